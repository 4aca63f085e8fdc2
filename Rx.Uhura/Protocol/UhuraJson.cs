using System.Runtime.CompilerServices;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Protocol;

/// <summary>
/// How the library turns application values into JSON, safely whatever the value: one serializer factory for links
/// and nodes, and writers that refuse nesting beyond a depth (and before the stack runs out) rather than recurse
/// without end, so an absurd argument is an <see cref="EncodeException"/> for its caller and never a stack overflow
/// that ends the process.
/// </summary>
internal static class UhuraJson
{
    /// <summary>
    /// The serializer for a link's or node's settings: the caller's settings copied (never changed), dates left as
    /// strings when read, and a converter that refuses tasks (appended last: an application's own converter wins).
    /// </summary>
    public static JsonSerializer CreateSerializer(JsonSerializerSettings? custom)
    {
        var settings = custom is not null ? new JsonSerializerSettings(custom) : new JsonSerializerSettings();
        settings.DateParseHandling = DateParseHandling.None;
        var serializer = JsonSerializer.Create(settings);
        serializer.Converters.Add(TaskRefusal.Instance);
        return serializer;
    }

    /// <summary>
    /// A detached <see cref="JToken"/> for <paramref name="value"/> (a token is copied, so later changes by the caller do
    /// not leak in), at most <paramref name="maxDepth"/> levels deep.
    /// </summary>
    /// <exception cref="JsonException">The value cannot be serialized, or nests deeper than <paramref name="maxDepth"/>.</exception>
    public static JToken ToToken(object? value, JsonSerializer serializer, int maxDepth)
    {
        if (value is null)
        {
            return JValue.CreateNull();
        }

        using var writer = new DepthLimitedTokenWriter(maxDepth);
        if (value is JToken token)
        {
            token.WriteTo(writer);
        }
        else
        {
            serializer.Serialize(writer, value);
        }

        return writer.Token ?? JValue.CreateNull();
    }

    /// <summary>Called as a writer opens a container at depth <paramref name="top"/> (containers already open).</summary>
    internal static void Enter(int top, int maxDepth)
    {
        if (top >= maxDepth)
        {
            throw new JsonWriterException($"The value nests deeper than {maxDepth} levels (MaxJsonDepth), more than a peer reads.");
        }

        RuntimeHelpers.EnsureSufficientExecutionStack();
    }

    /// <summary>Writes JSON text, refusing to open a container deeper than its limit.</summary>
    internal sealed class DepthLimitedTextWriter(TextWriter text, int maxDepth) : JsonTextWriter(text)
    {
        public override void WriteStartArray()
        {
            Enter(Top, maxDepth);
            base.WriteStartArray();
        }

        public override void WriteStartObject()
        {
            Enter(Top, maxDepth);
            base.WriteStartObject();
        }

        public override void WriteStartConstructor(string name)
        {
            Enter(Top, maxDepth);
            base.WriteStartConstructor(name);
        }
    }

    /// <summary>Builds a <see cref="JToken"/>, refusing to open a container deeper than its limit.</summary>
    private sealed class DepthLimitedTokenWriter(int maxDepth) : JTokenWriter
    {
        public override void WriteStartArray()
        {
            Enter(Top, maxDepth);
            base.WriteStartArray();
        }

        public override void WriteStartObject()
        {
            Enter(Top, maxDepth);
            base.WriteStartObject();
        }

        public override void WriteStartConstructor(string name)
        {
            Enter(Top, maxDepth);
            base.WriteStartConstructor(name);
        }
    }

    /// <summary>
    /// A <see cref="Task"/> or <see cref="ValueTask"/> is not a value: serializing one reads its <c>Result</c>, which
    /// blocks the sender's thread until the task completes (for ever, for one that never does). Refused instead, with
    /// the likely cause.
    /// </summary>
    private sealed class TaskRefusal : JsonConverter
    {
        public static readonly TaskRefusal Instance = new();

        public override bool CanRead => false;

        public override bool CanConvert(Type objectType)
            => typeof(Task).IsAssignableFrom(objectType) || objectType == typeof(ValueTask)
                || (objectType.IsGenericType && objectType.GetGenericTypeDefinition() == typeof(ValueTask<>));

        public override void WriteJson(JsonWriter writer, object? value, JsonSerializer serializer)
            => throw new JsonSerializationException($"A {value?.GetType().Name ?? "task"} is not a value that can be sent: await it and send its result.");

        public override object? ReadJson(JsonReader reader, Type objectType, object? existingValue, JsonSerializer serializer)
            => throw new NotSupportedException();
    }
}
