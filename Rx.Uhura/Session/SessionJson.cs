using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Session;

/// <summary>
/// A session as one JSON object text, and back: the format the durable stores (SQLite, PostgreSQL) keep a session in,
/// for writers of their own <see cref="ISessionStore"/> (a Redis store, for example) that keep it as text too.
/// </summary>
/// <remarks>
/// <see cref="Read"/> returns exactly what <see cref="Write"/> was given: strings stay strings (no date parsing), numbers
/// and nested values keep their JSON form, and the keys compare ordinally.
/// </remarks>
public static class SessionJson
{
    /// <summary>Deep enough for any session the server accepted; a stored document deeper than this is refused, not recursed into.</summary>
    private const int MaxDepth = 256;

    /// <summary>Writes a session as one compact JSON object, a property per key in the dictionary's order.</summary>
    /// <param name="session">The session, as the server hands it to <see cref="ISessionStore.SetAsync"/>.</param>
    /// <returns>The JSON text, without indentation.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="session"/> is null.</exception>
    public static string Write(IReadOnlyDictionary<string, JToken> session)
    {
        ArgumentNullException.ThrowIfNull(session);
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

    /// <summary>
    /// Reads a session written by <see cref="Write"/>: the properties of one JSON object, as a dictionary with ordinal
    /// keys. Strings are not parsed as dates; of a key given twice, the last value wins.
    /// </summary>
    /// <param name="json">The JSON text of one object.</param>
    /// <returns>A new dictionary, owned by the caller.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="JsonReaderException">
    /// <paramref name="json"/> is not valid JSON, is not a JSON object, or nests deeper than 256 levels.
    /// </exception>
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
