using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Protocol;

/// <summary>Where a socket-ipc frame's parts lie: the topic, and the message's JSON (start -1 when the frame has none).</summary>
internal readonly record struct SocketIpcFrame(string Topic, int MessageStart, int MessageLength);

/// <summary>
/// The socket-ipc wire (<c>@crussell52/socket-ipc@0.4.0</c>, see <c>interop/SOCKET-IPC-NOTES.md</c>): each message is
/// <c>{"topic":"...","message":...}</c> as UTF-8 JSON followed by two NUL bytes. A NUL never occurs inside JSON text
/// (strings escape it), so the delimiter cannot appear within a frame.
/// </summary>
internal static class SocketIpcCodec
{
    private const int SampleBytes = 200;

    /// <summary>The two bytes that end every frame.</summary>
    public static ReadOnlySpan<byte> Delimiter => "\0\0"u8;

    private static ReadOnlySpan<byte> TopicPrefix => "{\"topic\":"u8;

    private static ReadOnlySpan<byte> MessagePrefix => ",\"message\":"u8;

    /// <summary>
    /// Validates one frame (without its delimiter) and finds its topic and message. Unlike the Node package, which
    /// crashes on such input, anything that is not a JSON object with a string <c>topic</c> is refused.
    /// </summary>
    /// <exception cref="DecodeException">Not valid UTF-8 or JSON, too deep, not an object, no string topic, or a key or topic escaping an unpaired surrogate.</exception>
    public static SocketIpcFrame Scan(byte[] frame, int maxDepth, Utf8NameCache names)
    {
        if (!Utf8.IsValid(frame))
        {
            throw new DecodeException("A socket-ipc message is not valid UTF-8.", Sample(frame));
        }

        var reader = new Utf8JsonReader(frame, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new DecodeException("A socket-ipc message is not a JSON object.", Sample(frame));
            }

            string? topic = null;
            int start = -1, length = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("topic"u8))
                {
                    reader.Read();
                    topic = reader.TokenType == JsonTokenType.String ? names.Read(ref reader) : null;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("message"u8))
                {
                    reader.Read();
                    start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    length = (int)reader.BytesConsumed - start;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.Read())
            {
                throw new DecodeException("A socket-ipc message has data after its JSON object.", Sample(frame));
            }

            return topic is null
                ? throw new DecodeException("A socket-ipc message has no string \"topic\".", Sample(frame))
                : new SocketIpcFrame(topic, start, length);
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"A socket-ipc message is not valid JSON: {ex.Message}", Sample(frame), ex);
        }
        catch (InvalidOperationException ex)
        {
            // Utf8JsonReader validates escapes but not surrogate pairs: reading or comparing a string that escapes an
            // unpaired surrogate ("\ud800") throws this, not a JsonException.
            throw new DecodeException($"A socket-ipc message has a string escaping an unpaired surrogate: {ex.Message}", Sample(frame), ex);
        }
    }

    /// <summary>
    /// Writes <c>{"topic":NAME,"message":ARG}</c> and the delimiter from an encoded <c>["name", arg]</c> payload (the
    /// name is already JSON-escaped there). Without an argument the <c>message</c> key is left out, as
    /// <c>JSON.stringify</c> leaves out <c>undefined</c>.
    /// </summary>
    public static void Write(IBufferWriter<byte> output, OutboundMessage message)
    {
        var payload = message.Payload.AsSpan();
        output.Write(TopicPrefix);
        output.Write(payload[1..message.NameEnd]);
        if (message.HasArguments)
        {
            output.Write(MessagePrefix);
            output.Write(message.ArgumentsBody);
        }

        output.Write("}"u8);
        output.Write(Delimiter);
    }

    private static string Sample(byte[] frame) => Encoding.UTF8.GetString(frame, 0, Math.Min(frame.Length, SampleBytes));
}
