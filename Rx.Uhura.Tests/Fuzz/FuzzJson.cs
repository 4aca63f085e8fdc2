using System.Text;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>Random JSON text for the generators: mostly valid values, sometimes odd ones (lone surrogates, huge numbers, deep nesting).</summary>
internal static class FuzzJson
{
    private static readonly string[] Strings =
    [
        "", "a", "ping", "héllo 👋", "\\\"", "\\\\", "\\n\\t", "\\u0000", "\\u00e9", "\\ud83d\\udc4b", "\\ud800", "\\udc00x", "ack::1",
        "_set", "start", "connect", "invalidateSession", "_x", "ack::", "a]b}c[{",
    ];

    private static readonly string[] Numbers =
    [
        "0", "-0", "1", "-1", "42", "3.5", "-2.5e-3", "1e400", "-1e400", "1E+2", "9007199254740993", "123456789012345678901234567890",
        "0.0000000000000000000000000000001", "18446744073709551616",
    ];

    /// <summary>A JSON string literal.</summary>
    public static string String(Random rng) => "\"" + Strings[rng.Next(Strings.Length)] + "\"";

    /// <summary>Any JSON value, nested at most <paramref name="depth"/> more levels (rarely far deeper).</summary>
    public static string Value(Random rng, int depth = 3)
    {
        var text = new StringBuilder();
        Write(rng, text, depth);
        return text.ToString();
    }

    /// <summary>A value of a random type: the wrong type for most fields.</summary>
    public static string AnyType(Random rng) => rng.Next(6) switch
    {
        0 => "null",
        1 => rng.Next(2) == 0 ? "true" : "false",
        2 => Numbers[rng.Next(Numbers.Length)],
        3 => String(rng),
        4 => "[" + Value(rng, 1) + "]",
        _ => "{\"k\":" + Value(rng, 1) + "}",
    };

    /// <summary>Nesting of exactly <paramref name="depth"/> arrays or objects.</summary>
    public static string Deep(Random rng, int depth)
    {
        var array = rng.Next(2) == 0;
        var text = new StringBuilder();
        text.Insert(0, array ? "[" : "{\"d\":", depth).Append('0').Insert(text.Length, array ? "]" : "}", depth);
        return text.ToString();
    }

    private static void Write(Random rng, StringBuilder text, int depth)
    {
        switch (rng.Next(depth > 0 ? 9 : 5))
        {
            case 0:
                text.Append("null");
                break;
            case 1:
                text.Append(rng.Next(2) == 0 ? "true" : "false");
                break;
            case 2:
                text.Append(Numbers[rng.Next(Numbers.Length)]);
                break;
            case 3 or 4:
                text.Append(String(rng));
                break;
            case 5 or 6:
                text.Append('[');
                for (var i = rng.Next(4); i > 0; i--)
                {
                    Write(rng, text, depth - 1);
                    text.Append(i > 1 ? "," : string.Empty);
                }

                text.Append(']');
                break;
            default:
                text.Append('{');
                for (var i = rng.Next(4); i > 0; i--)
                {
                    text.Append(String(rng)).Append(rng.Next(8) == 0 ? " : " : ":");
                    Write(rng, text, depth - 1);
                    text.Append(i > 1 ? "," : string.Empty);
                }

                text.Append('}');
                break;
        }
    }
}
