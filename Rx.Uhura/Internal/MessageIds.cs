using System.Security.Cryptography;

namespace Rx.Uhura.Internal;

/// <summary>
/// Rx.Uhura's message ids on the Node uhura wire are <c>rxXXXXXXXXX:SEQ</c>: a random prefix per sender (a client, for
/// all its links; a server connection) and a sequence number that a resend keeps, so receivers can drop duplicates.
/// Node senders use uuids, which never contain ':'.
/// </summary>
internal static class MessageIds
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private const int PrefixLength = 13; // "rx" + 10 random + ":"

    public static string NewPrefix() => "rx" + RandomNumberGenerator.GetString(Alphabet, 10) + ":";

    /// <summary>Splits an id of the form <c>rxXXXXXXXXXX:SEQ</c>; false for other ids (a Node sender's uuids).</summary>
    public static bool TrySplit(string id, out ReadOnlySpan<char> prefix, out long seq)
    {
        prefix = default;
        seq = 0;
        if (id.Length <= PrefixLength || id.Length > PrefixLength + 18 || !id.StartsWith("rx", StringComparison.Ordinal) || id[PrefixLength - 1] != ':'
            || !long.TryParse(id.AsSpan(PrefixLength), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out seq))
        {
            return false;
        }

        prefix = id.AsSpan(0, PrefixLength);
        return true;
    }
}
