using System.Text.RegularExpressions;

namespace Rx.Uhura.Internal;

/// <summary>The checks the options of the durable session stores (SQLite, PostgreSQL) share.</summary>
internal static partial class StoreOptionsValidation
{
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is not positive.</exception>
    public static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, "Must be positive.");
        }
    }

    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is not positive.</exception>
    public static void Positive(int value, string name)
    {
        if (value < 1)
        {
            throw new ArgumentOutOfRangeException(name, value, "Must be positive.");
        }
    }

    /// <summary>A table prefix: empty, or letters, digits and <c>_</c>, not starting with a digit, at most 40 characters.</summary>
    /// <exception cref="ArgumentException"><paramref name="prefix"/> is null or not such a prefix.</exception>
    public static void TablePrefix(string? prefix, string name)
    {
        if (prefix is null || !Identifier().IsMatch(prefix))
        {
            throw new ArgumentException("The table prefix may hold only letters, digits and '_', and not start with a digit (at most 40 characters).", name);
        }
    }

    /// <summary>Whether <paramref name="value"/> is empty, or letters, digits and <c>_</c>, not starting with a digit, at most 40 characters.</summary>
    public static bool IsIdentifier(string value) => Identifier().IsMatch(value);

    [GeneratedRegex("^(?:[A-Za-z_][A-Za-z0-9_]{0,39})?$")]
    private static partial Regex Identifier();
}
