using System.Buffers;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Protocol;

/// <summary>
/// Encodes and decodes the elements of the Node uhura wire (see <c>docs/PROTOCOL.md</c>): the legacy array form
/// <c>["name", ...args]</c>, the object form <c>{"args": [...], "id": "..."}</c>, and acks <c>{"args": ["ack::id"]}</c>.
/// An event's <c>["name", ...args]</c> array is encoded once (the payload) and framed per send, so a resend or a
/// broadcast never serializes the arguments again.
/// </summary>
internal static class NodeWireCodec
{
    public static ReadOnlySpan<byte> OpenArray => "[\n"u8;

    public static ReadOnlySpan<byte> Separator => "\n,\n"u8;

    public static ReadOnlySpan<byte> CloseArray => "\n]\n"u8;

    private static ReadOnlySpan<byte> ObjectPrefix => "{\"args\":"u8;

    private static ReadOnlySpan<byte> IdPrefix => ",\"id\":\""u8;

    private static ReadOnlySpan<byte> AckPrefix => "{\"args\":[\"ack::"u8;

    [ThreadStatic]
    private static EncoderState? t_encoder;

    /// <summary>Serializes <c>[name, ...args]</c> as UTF-8 JSON.</summary>
    /// <exception cref="JsonException">An argument cannot be serialized.</exception>
    public static byte[] EncodePayload(string name, ReadOnlySpan<object?> args, JsonSerializer serializer)
        => EncodePayload(name, args, serializer, out _);

    /// <summary>Serializes <c>[name, ...args]</c>; <paramref name="nameEnd"/> is where the name ends (the native protocol sends the name and the arguments apart).</summary>
    public static byte[] EncodePayload(string name, ReadOnlySpan<object?> args, JsonSerializer serializer, out int nameEnd)
        => EncodePayload(name, args, serializer, out nameEnd, out _);

    /// <summary>
    /// As <see cref="EncodePayload(string, ReadOnlySpan{object?}, JsonSerializer, out int)"/>; <paramref name="strict"/>
    /// is true when every argument was a simple value written by <see cref="FastJsonWriter"/>: valid UTF-8, strict JSON,
    /// one level deep, so a sender need not validate it again. Nothing nests deeper than <paramref name="maxDepth"/> (the
    /// outer array counts one): a deeper value fails with a <see cref="JsonWriterException"/> before the writer recurses
    /// further.
    /// </summary>
    public static byte[] EncodePayload(string name, ReadOnlySpan<object?> args, JsonSerializer serializer, out int nameEnd, out bool strict, int maxDepth = int.MaxValue)
    {
        var state = t_encoder ??= new EncoderState();
        if (state.InUse)
        {
            // An argument's serialization (a converter, a getter) encodes another event on this thread while this
            // thread's buffer holds a payload half written: the nested call gets a buffer of its own.
            var nested = new EncoderState();
            try
            {
                return Encode(nested, name, args, serializer, out nameEnd, out strict, maxDepth);
            }
            finally
            {
                nested.Buffer.Dispose();
            }
        }

        state.InUse = true;
        try
        {
            return Encode(state, name, args, serializer, out nameEnd, out strict, maxDepth);
        }
        finally
        {
            state.InUse = false;
        }
    }

    private static byte[] Encode(EncoderState state, string name, ReadOnlySpan<object?> args, JsonSerializer serializer, out int nameEnd, out bool strict, int maxDepth)
    {
        strict = false;
        var buffer = state.Buffer;
        buffer.Reset();
        if (FastJsonWriter.CanWriteAll(args))
        {
            try
            {
                buffer.GetSpan(1)[0] = (byte)'[';
                buffer.Advance(1);
                FastJsonWriter.WriteString(buffer, name);
                nameEnd = buffer.WrittenCount;
                foreach (var arg in args)
                {
                    buffer.GetSpan(1)[0] = (byte)',';
                    buffer.Advance(1);
                    FastJsonWriter.Write(buffer, arg);
                }

                buffer.GetSpan(1)[0] = (byte)']';
                buffer.Advance(1);
                strict = true;
                return buffer.ToArray();
            }
            finally
            {
                buffer.Reset();
            }
        }

        state.Text.SetOutput(buffer);
        try
        {
            using (var writer = new UhuraJson.DepthLimitedTextWriter(state.Text, maxDepth) { CloseOutput = false, Formatting = Formatting.None })
            {
                writer.WriteStartArray();
                writer.WriteValue(name);
                writer.Flush();
                nameEnd = buffer.WrittenCount;
                foreach (var arg in args)
                {
                    WriteValue(writer, arg, serializer);
                }

                writer.WriteEndArray();
                writer.Flush();
            }

            return buffer.ToArray();
        }
        finally
        {
            buffer.Reset();
        }
    }

    public static void WriteLegacy(IBufferWriter<byte> output, ReadOnlySpan<byte> payload) => output.Write(payload);

    /// <summary>Writes an encoded payload; a large one is referenced, not copied, by a <see cref="PooledBufferWriter"/> (payloads are never changed once encoded).</summary>
    public static void WriteLegacy(IBufferWriter<byte> output, byte[] payload) => WritePayload(output, payload);

    /// <summary>Writes <c>{"args":PAYLOAD,"id":"PREFIXSEQ"}</c>, or without the id when <paramref name="seq"/> is 0.</summary>
    public static void WriteObject(IBufferWriter<byte> output, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> idPrefix, long seq)
    {
        output.Write(ObjectPrefix);
        output.Write(payload);
        WriteObjectEnd(output, idPrefix, seq);
    }

    /// <summary><inheritdoc cref="WriteObject(IBufferWriter{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, long)"/> A large payload is referenced, not copied (see <see cref="WriteLegacy(IBufferWriter{byte}, byte[])"/>).</summary>
    public static void WriteObject(IBufferWriter<byte> output, byte[] payload, ReadOnlySpan<byte> idPrefix, long seq)
    {
        output.Write(ObjectPrefix);
        WritePayload(output, payload);
        WriteObjectEnd(output, idPrefix, seq);
    }

    private static void WritePayload(IBufferWriter<byte> output, byte[] payload)
    {
        if (output is PooledBufferWriter pooled)
        {
            pooled.WriteShared(payload, 0, payload.Length);
        }
        else
        {
            output.Write(payload);
        }
    }

    private static void WriteObjectEnd(IBufferWriter<byte> output, ReadOnlySpan<byte> idPrefix, long seq)
    {
        if (seq > 0)
        {
            output.Write(IdPrefix);
            output.Write(idPrefix);
            var span = output.GetSpan(20);
            seq.TryFormat(span, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
            output.Advance(written);
            output.Write("\"}"u8);
        }
        else
        {
            output.Write("}"u8);
        }
    }

    public static void WriteAck(IBufferWriter<byte> output, string id)
    {
        output.Write(AckPrefix);
        FastJsonWriter.WriteEscaped(output, id);
        output.Write("\"]}"u8);
    }

    /// <summary>Parses one element (already cut by <see cref="JsonArrayFramer"/>) into a JSON token.</summary>
    /// <exception cref="DecodeException">The element is not valid JSON.</exception>
    public static JToken Parse(in ReadOnlySequence<byte> element, int maxDepth)
    {
        string text;
        try
        {
            text = element.IsSingleSegment ? Utf8Strict.GetString(element.FirstSpan) : Utf8Strict.GetString(element);
        }
        catch (DecoderFallbackException ex)
        {
            throw new DecodeException("A message is not valid UTF-8.", null, ex);
        }

        try
        {
            using var reader = new JsonTextReader(new StringReader(text))
            {
                DateParseHandling = DateParseHandling.None,
                FloatParseHandling = FloatParseHandling.Double,
                MaxDepth = maxDepth,
            };
            var token = JToken.ReadFrom(reader);
            if (reader.Read())
            {
                throw new DecodeException("A message has data after its JSON value.", Sample(text));
            }

            return token;
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"A message is not valid JSON: {ex.Message}", Sample(text), ex);
        }
    }

    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static string Sample(string text) => text.Length <= 200 ? text : text[..200];

    private static void WriteValue(JsonWriter writer, object? value, JsonSerializer serializer)
    {
        switch (value)
        {
            case null:
                writer.WriteNull();
                break;
            case JToken token:
                token.WriteTo(writer);
                break;
            case string s:
                writer.WriteValue(s);
                break;
            case int i:
                writer.WriteValue(i);
                break;
            case long l:
                writer.WriteValue(l);
                break;
            case bool b:
                writer.WriteValue(b);
                break;
            case double d:
                writer.WriteValue(d);
                break;
            default:
                serializer.Serialize(writer, value);
                break;
        }
    }

    private sealed class EncoderState
    {
        public PooledBufferWriter Buffer { get; } = new();

        public Utf8BufferTextWriter Text { get; } = new();

        /// <summary>True while a payload is being encoded with this state (a nested encode on the same thread takes another).</summary>
        public bool InUse { get; set; }
    }
}
