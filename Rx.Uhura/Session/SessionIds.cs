using System.Security.Cryptography;

namespace Rx.Uhura.Session;

/// <summary>Session ids: 24 characters of [A-Za-z0-9] from a cryptographic RNG (about 143 bits), like Node uhura's <c>uid(24)</c>.</summary>
internal static class SessionIds
{
    public const int Length = 24;
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static string New() => RandomNumberGenerator.GetString(Alphabet, Length);

    /// <summary>
    /// Whether a client's proposed id may name a new session: 16 to 128 characters of <c>A-Z a-z 0-9 _ -</c>, enough
    /// randomness not to be guessed by length alone (ids are bearer secrets) and nothing a store or a log mangles.
    /// </summary>
    public static bool IsWellFormed(string id)
    {
        if (id.Length is < 16 or > 128)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-')
            {
                return false;
            }
        }

        return true;
    }
}
