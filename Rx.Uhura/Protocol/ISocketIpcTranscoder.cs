using System.Buffers;

namespace Rx.Uhura.Protocol;

/// <summary>One socket-ipc message: its topic and its message as UTF-8 JSON (null when it has none).</summary>
/// <param name="Topic">The topic (the event name).</param>
/// <param name="MessageJson">The message as one UTF-8 JSON value, or null.</param>
public readonly record struct SocketIpcMessage(string Topic, ReadOnlyMemory<byte>? MessageJson);

/// <summary>
/// How socket-ipc messages become bytes and back: the package's pluggable transcoder. The default
/// (<see cref="JsonSocketIpcTranscoder"/>) is the package's own: <c>{"topic":..,"message":..}</c> and two NUL bytes.
/// Set <see cref="ConnectionOptions.SocketIpcTranscoder"/> on both sides to use another. Messages cross the
/// transcoder as UTF-8 JSON (what the library's arguments are); a transcoder for another format converts.
/// </summary>
public interface ISocketIpcTranscoder
{
    /// <summary>Writes one message as a frame. <paramref name="messageJson"/> is one UTF-8 JSON value when <paramref name="hasMessage"/>.</summary>
    void Encode(string topic, ReadOnlySpan<byte> messageJson, bool hasMessage, IBufferWriter<byte> output);

    /// <summary>
    /// Cuts one message from the start of <paramref name="buffer"/> and advances it past the frame; returns false, leaving
    /// it untouched, while the frame is incomplete.
    /// </summary>
    /// <exception cref="DecodeException">The frame is malformed, or longer than <paramref name="maxFrameSize"/> (<see cref="FrameTooLargeException"/>).</exception>
    bool TryDecode(ref ReadOnlySequence<byte> buffer, long maxFrameSize, out SocketIpcMessage message);
}

/// <summary>The socket-ipc package's own transcoder: <c>JSON.stringify({topic, message})</c> followed by <c>\0\0</c>.</summary>
public sealed class JsonSocketIpcTranscoder : ISocketIpcTranscoder
{
    /// <summary>The shared instance.</summary>
    public static JsonSocketIpcTranscoder Instance { get; } = new();

    private JsonSocketIpcTranscoder()
    {
    }

    /// <inheritdoc/>
    public void Encode(string topic, ReadOnlySpan<byte> messageJson, bool hasMessage, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(output);
        output.Write("{\"topic\":"u8);
        FastJsonWriter.WriteString(output, topic);
        if (hasMessage)
        {
            output.Write(",\"message\":"u8);
            output.Write(messageJson);
        }

        output.Write("}"u8);
        output.Write(SocketIpcCodec.Delimiter);
    }

    /// <inheritdoc/>
    public bool TryDecode(ref ReadOnlySequence<byte> buffer, long maxFrameSize, out SocketIpcMessage message)
    {
        var consumed = buffer.Start;
        var examined = buffer.Start;
        if (!new DelimitedMessageReader(SocketIpcCodec.Delimiter, maxFrameSize).TryParseMessage(buffer, ref consumed, ref examined, out var frame))
        {
            message = default;
            return false;
        }

        buffer = buffer.Slice(consumed);
        var bytes = frame.ToArray();
        var scan = SocketIpcCodec.Scan(bytes, int.MaxValue, new Internal.Utf8NameCache());
        message = new SocketIpcMessage(scan.Topic, scan.MessageStart < 0 ? (ReadOnlyMemory<byte>?)null : bytes.AsMemory(scan.MessageStart, scan.MessageLength));
        return true;
    }
}
