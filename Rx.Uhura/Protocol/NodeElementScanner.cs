using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Protocol;

/// <summary>What routing a Node uhura wire element needs: its event name, message id, and where its <c>[name, ...args]</c> array lies.</summary>
/// <param name="Name">The event name (the array's first element), or null when the array is empty or does not start with a string.</param>
/// <param name="MessageId">The object form's truthy <c>id</c>, as text; null otherwise.</param>
/// <param name="ArrayStart">Offset of the <c>[name, ...args]</c> array; -1 when an object has no <c>args</c> array.</param>
/// <param name="ArrayLength">Length of that array in bytes.</param>
internal readonly record struct NodeElement(string? Name, string? MessageId, int ArrayStart, int ArrayLength);

/// <summary>
/// Validates one element of the Node uhura wire (strict UTF-8 JSON, nesting bounded) and finds the event name, the
/// message id and the arguments without building a tree: an application event's arguments become
/// <c>JToken</c>s only when read. Whatever Newtonsoft.Json would accept from <c>JSON.stringify</c> is accepted.
/// </summary>
internal static class NodeElementScanner
{
    private const int SampleBytes = 200;

    /// <exception cref="DecodeException">Not valid UTF-8 or not valid JSON, nesting too deep, data after the value, or a name or id escaping an unpaired surrogate.</exception>
    /// <exception cref="ProtocolException">Valid JSON, but neither an array nor an object with an <c>args</c> array.</exception>
    public static NodeElement Scan(byte[] element, int maxDepth, Utf8NameCache names)
    {
        if (!Utf8.IsValid(element))
        {
            throw new DecodeException("A message is not valid UTF-8.", Sample(element));
        }

        var reader = new Utf8JsonReader(element, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            reader.Read();
            NodeElement result;
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                var start = (int)reader.TokenStartIndex;
                var name = ReadArray(ref reader, names);
                result = new NodeElement(name, null, start, (int)reader.BytesConsumed - start);
            }
            else if (reader.TokenType == JsonTokenType.StartObject)
            {
                result = ReadObject(ref reader, names);
            }
            else
            {
                throw new ProtocolException("A message is neither an array nor an object.");
            }

            if (reader.Read())
            {
                throw new DecodeException("A message has data after its JSON value.", Sample(element));
            }

            return result;
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"A message is not valid JSON: {ex.Message}", Sample(element), ex);
        }
        catch (InvalidOperationException ex)
        {
            // Utf8JsonReader validates escapes but not surrogate pairs: reading or comparing a string that escapes an
            // unpaired surrogate ("\ud800") throws this, not a JsonException.
            throw new DecodeException($"A message has a string escaping an unpaired surrogate: {ex.Message}", Sample(element), ex);
        }
    }

    /// <summary>At the array's start: reads its first element as the name (if a string) and moves to the array's end.</summary>
    private static string? ReadArray(ref Utf8JsonReader reader, Utf8NameCache names)
    {
        var depth = reader.CurrentDepth;
        reader.Read();
        string? name = null;
        if (reader.TokenType == JsonTokenType.String)
        {
            name = names.Read(ref reader);
        }

        while (!(reader.TokenType == JsonTokenType.EndArray && reader.CurrentDepth == depth))
        {
            if (reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject && reader.CurrentDepth > depth)
            {
                reader.Skip();
            }

            reader.Read();
        }

        return name;
    }

    /// <summary>The object form: <c>args</c> (the last one, as a JSON object keeps) and a truthy <c>id</c>; other keys are skipped.</summary>
    private static NodeElement ReadObject(ref Utf8JsonReader reader, Utf8NameCache names)
    {
        string? name = null;
        string? id = null;
        int start = -1, length = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("args"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    start = (int)reader.TokenStartIndex;
                    name = ReadArray(ref reader, names);
                    length = (int)reader.BytesConsumed - start;
                }
                else
                {
                    reader.Skip();
                    (name, start, length) = (null, -1, 0);
                }
            }
            else if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                id = TruthyText(ref reader);
                reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (start < 0)
        {
            throw new ProtocolException("An object message has no \"args\" array.");
        }

        return new NodeElement(name, id, start, length);
    }

    /// <summary>The id as text when JavaScript would call it truthy (non-empty string, non-zero number, true); objects and arrays are ignored.</summary>
    private static string? TruthyText(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString() is { Length: > 0 } text ? text : null,
        JsonTokenType.Number => reader.TryGetDouble(out var number) && number != 0 && !double.IsNaN(number) ? Encoding.UTF8.GetString(reader.ValueSpan) : null,
        JsonTokenType.True => "true",
        _ => null,
    };

    private static string Sample(byte[] element) => Encoding.UTF8.GetString(element, 0, Math.Min(element.Length, SampleBytes));
}
