using System.Text;
using System.Text.Unicode;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Protocol;

/// <summary>
/// An event's arguments as a UTF-8 JSON array: validated on arrival without building anything (so a malformed message
/// fails on its connection, at once), parsed into <see cref="JToken"/>s only when the application reads them.
/// </summary>
internal static class JsonArgs
{
    private const int SampleBytes = 200;

    /// <summary>Checks that <paramref name="json"/> is one well-formed JSON array of at most <paramref name="maxDepth"/> levels, in valid UTF-8.</summary>
    /// <exception cref="DecodeException">It is not valid UTF-8 or not valid JSON, or it nests too deep.</exception>
    /// <exception cref="ProtocolException">It is valid JSON but not an array.</exception>
    public static void ValidateArray(ReadOnlySpan<byte> json, int maxDepth, string what)
    {
        if (IsFlatSimpleArray(json))
        {
            return; // the common case, checked without the general reader
        }

        if (!Utf8.IsValid(json))
        {
            throw new DecodeException($"The {what} are not valid UTF-8.", Sample(json));
        }

        var reader = new System.Text.Json.Utf8JsonReader(json, new System.Text.Json.JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            if (!reader.Read())
            {
                throw new DecodeException($"The {what} are empty.", Sample(json));
            }

            if (reader.TokenType != System.Text.Json.JsonTokenType.StartArray)
            {
                throw new ProtocolException($"The {what} are not a JSON array.");
            }

            reader.Skip();
            if (reader.Read())
            {
                throw new DecodeException($"The {what} have data after the array.", Sample(json));
            }
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new DecodeException($"The {what} are not valid JSON: {ex.Message}", Sample(json), ex);
        }
    }

    /// <summary>Checks that <paramref name="json"/> is one well-formed JSON value of at most <paramref name="maxDepth"/> levels, in valid UTF-8.</summary>
    /// <exception cref="DecodeException">It is not.</exception>
    public static void ValidateValue(ReadOnlySpan<byte> json, int maxDepth, string what)
    {
        if (!Utf8.IsValid(json))
        {
            throw new DecodeException($"The {what} is not valid UTF-8.", Sample(json));
        }

        var reader = new System.Text.Json.Utf8JsonReader(json, new System.Text.Json.JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            if (!reader.Read())
            {
                throw new DecodeException($"The {what} is empty.", Sample(json));
            }

            reader.Skip();
            if (reader.Read())
            {
                throw new DecodeException($"The {what} has data after its value.", Sample(json));
            }
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new DecodeException($"The {what} is not valid JSON: {ex.Message}", Sample(json), ex);
        }
    }

    /// <summary>
    /// True for an array of integers, <c>true</c>, <c>false</c>, <c>null</c> and printable-ASCII strings without escapes,
    /// separated by commas and spaces: well-formed by construction. False means "not sure": the general reader decides.
    /// </summary>
    internal static bool IsFlatSimpleArray(ReadOnlySpan<byte> json)
    {
        var i = 0;
        if (json.Length < 2 || json[0] != (byte)'[')
        {
            return false;
        }

        i = SkipSpaces(json, 1);
        if (i < json.Length && json[i] == (byte)']')
        {
            return SkipSpaces(json, i + 1) == json.Length;
        }

        while (i < json.Length)
        {
            i = SimpleValueEnd(json, i);
            if (i < 0)
            {
                return false;
            }

            i = SkipSpaces(json, i);
            if (i >= json.Length)
            {
                return false;
            }

            if (json[i] == (byte)']')
            {
                return SkipSpaces(json, i + 1) == json.Length;
            }

            if (json[i] != (byte)',')
            {
                return false;
            }

            i = SkipSpaces(json, i + 1);
        }

        return false;
    }

    /// <summary>
    /// The elements of an array <see cref="IsFlatSimpleArray"/> accepted, built directly (the values Newtonsoft would
    /// build: integers as <see cref="long"/>, strings, booleans, null). False for an integer beyond <see cref="long"/>.
    /// </summary>
    private static bool TryParseFlat(ReadOnlySpan<byte> json, int skip, out JToken[] args)
    {
        var values = new List<JToken>(4);
        var i = SkipSpaces(json, 1);
        while (i < json.Length && json[i] != (byte)']')
        {
            var end = SimpleValueEnd(json, i);
            var token = json[i..end];
            switch (token[0])
            {
                case (byte)'"':
                    values.Add(new JValue(Encoding.ASCII.GetString(token[1..^1])));
                    break;
                case (byte)'t':
                    values.Add(new JValue(true));
                    break;
                case (byte)'f':
                    values.Add(new JValue(false));
                    break;
                case (byte)'n':
                    values.Add(JValue.CreateNull());
                    break;
                default:
                    if (!long.TryParse(token, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var number))
                    {
                        args = [];
                        return false;
                    }

                    values.Add(new JValue(number));
                    break;
            }

            i = SkipSpaces(json, end);
            if (json[i] == (byte)',')
            {
                i = SkipSpaces(json, i + 1);
            }
        }

        args = skip >= values.Count ? [] : values.GetRange(skip, values.Count - skip).ToArray();
        return true;
    }

    /// <summary>Reads validated JSON into a token with Newtonsoft (dates left as strings, floats as doubles, depth bounded).</summary>
    private static JToken ReadToken(byte[] json, int start, int length, int maxDepth, string what)
    {
        try
        {
            using var reader = new JsonTextReader(new StringReader(Encoding.UTF8.GetString(json, start, length)))
            {
                DateParseHandling = DateParseHandling.None,
                FloatParseHandling = FloatParseHandling.Double,
                MaxDepth = maxDepth,
            };
            return JToken.ReadFrom(reader);
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"The {what} cannot be read: {ex.Message}", Sample(json.AsSpan(start, length)), ex);
        }
    }

    private static int SkipSpaces(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && json[i] == (byte)' ')
        {
            i++;
        }

        return i;
    }

    /// <summary>The index after the simple value at <paramref name="i"/>, or -1 when it is not one.</summary>
    private static int SimpleValueEnd(ReadOnlySpan<byte> json, int i)
    {
        if (i >= json.Length)
        {
            return -1;
        }

        var rest = json[i..];
        switch (rest[0])
        {
            case (byte)'"':
                for (var j = 1; j < rest.Length; j++)
                {
                    var b = rest[j];
                    if (b == (byte)'"')
                    {
                        return i + j + 1;
                    }

                    if (b is < 0x20 or > 0x7E or (byte)'\\')
                    {
                        return -1;
                    }
                }

                return -1;
            case (byte)'t':
                return rest.StartsWith("true"u8) ? i + 4 : -1;
            case (byte)'f':
                return rest.StartsWith("false"u8) ? i + 5 : -1;
            case (byte)'n':
                return rest.StartsWith("null"u8) ? i + 4 : -1;
        }

        // An integer: -?(0|[1-9][0-9]*), not followed by a fraction or an exponent (those go to the general reader).
        var k = 0;
        if (rest[k] == (byte)'-')
        {
            k++;
        }

        if (k >= rest.Length || !char.IsAsciiDigit((char)rest[k]))
        {
            return -1;
        }

        if (rest[k] == (byte)'0')
        {
            k++;
        }
        else
        {
            while (k < rest.Length && char.IsAsciiDigit((char)rest[k]))
            {
                k++;
            }
        }

        return k < rest.Length && rest[k] is (byte)'.' or (byte)'e' or (byte)'E' || (k < rest.Length && char.IsAsciiDigit((char)rest[k])) ? -1 : i + k;
    }

    /// <summary>Parses an array checked by <see cref="ValidateArray"/> into its elements.</summary>
    public static JToken[] Parse(byte[] json, int maxDepth) => Parse(json, 0, json.Length, 0, maxDepth);

    /// <summary>Parses the validated array at <paramref name="start"/> into its elements, leaving out the first <paramref name="skip"/> (the event name).</summary>
    /// <remarks>A negative <paramref name="skip"/> means the bytes are one JSON value, the only argument (socket-ipc's message).</remarks>
    public static JToken[] Parse(byte[] json, int start, int length, int skip, int maxDepth)
    {
        if (skip < 0)
        {
            return [ReadToken(json, start, length, maxDepth, "message")];
        }

        var span = json.AsSpan(start, length);
        if (IsFlatSimpleArray(span) && TryParseFlat(span, skip, out var flat))
        {
            return flat;
        }

        var array = (JArray)ReadToken(json, start, length, maxDepth, "arguments");
        var args = new JToken[Math.Max(array.Count - skip, 0)];
        for (var i = 0; i < args.Length; i++)
        {
            args[i] = array[i + skip];
        }

        return args;
    }

    private static string Sample(ReadOnlySpan<byte> json)
        => Encoding.UTF8.GetString(json[..Math.Min(json.Length, SampleBytes)]);
}
