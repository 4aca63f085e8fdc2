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

    /// <summary>Parses an array checked by <see cref="ValidateArray"/> into its elements.</summary>
    public static JToken[] Parse(byte[] json, int maxDepth) => Parse(json, 0, json.Length, 0, maxDepth);

    /// <summary>Parses the validated array at <paramref name="start"/> into its elements, leaving out the first <paramref name="skip"/> (the event name).</summary>
    public static JToken[] Parse(byte[] json, int start, int length, int skip, int maxDepth)
    {
        try
        {
            using var reader = new JsonTextReader(new StringReader(Encoding.UTF8.GetString(json, start, length)))
            {
                DateParseHandling = DateParseHandling.None,
                FloatParseHandling = FloatParseHandling.Double,
                MaxDepth = maxDepth,
            };
            var array = (JArray)JToken.ReadFrom(reader);
            var args = new JToken[Math.Max(array.Count - skip, 0)];
            for (var i = 0; i < args.Length; i++)
            {
                args[i] = array[i + skip];
            }

            return args;
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"The arguments cannot be read: {ex.Message}", Sample(json), ex);
        }
    }

    private static string Sample(ReadOnlySpan<byte> json)
        => Encoding.UTF8.GetString(json[..Math.Min(json.Length, SampleBytes)]);
}
