using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Sqlite;

/// <summary>A session as one JSON object, and back (strings stay strings: no date parsing).</summary>
internal static class SessionJson
{
    /// <summary>Deep enough for any session the server accepted; a stored document deeper than this is refused, not recursed into.</summary>
    private const int MaxDepth = 256;

    public static string Write(IReadOnlyDictionary<string, JToken> session)
    {
        using var text = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        using (var writer = new JsonTextWriter(text) { Formatting = Formatting.None })
        {
            writer.WriteStartObject();
            foreach (var (key, value) in session)
            {
                writer.WritePropertyName(key);
                value.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return text.ToString();
    }

    public static IReadOnlyDictionary<string, JToken> Read(string json)
    {
        using var reader = new JsonTextReader(new StringReader(json)) { DateParseHandling = DateParseHandling.None, MaxDepth = MaxDepth };
        var obj = JObject.Load(reader, new JsonLoadSettings { DuplicatePropertyNameHandling = DuplicatePropertyNameHandling.Replace });
        var session = new Dictionary<string, JToken>(obj.Count, StringComparer.Ordinal);
        foreach (var property in obj.Properties())
        {
            session[property.Name] = property.Value;
        }

        return session;
    }
}
