using System.Security.Cryptography;

namespace Rx.Uhura.Session;

/// <summary>Session ids: 24 characters of [A-Za-z0-9] from a cryptographic RNG (about 143 bits), like Node uhura's <c>uid(24)</c>.</summary>
internal static class SessionIds
{
    public const int Length = 24;
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static string New() => RandomNumberGenerator.GetString(Alphabet, Length);
}
