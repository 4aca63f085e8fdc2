using System.Buffers;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Protocol;

/// <summary>
/// The socket-ipc wire's <see cref="IMessageReader{TMessage}"/>: with the package's own format, frames cut at their
/// two NULs and scanned in place; with a custom <see cref="ISocketIpcTranscoder"/>, whatever it decodes, its message
/// JSON validated as the default path's is. Either way a message's JSON is a fresh array (the pipe's buffer is
/// released after parsing) and its topic is never null.
/// </summary>
internal sealed class SocketIpcMessageReader : IMessageReader<SocketIpcMessage>
{
    private readonly ISocketIpcTranscoder? _custom;
    private readonly DelimitedMessageReader? _frames;
    private readonly int _maxDepth;
    private readonly Utf8NameCache _names;
    private long _maxMessageSize;

    /// <summary>A reader for one link.</summary>
    /// <param name="transcoder">The link's transcoder (null or <see cref="JsonSocketIpcTranscoder"/>: the package's own format).</param>
    /// <param name="maxMessageSize">The largest frame accepted, delimiter excluded.</param>
    /// <param name="maxDepth">The deepest JSON accepted.</param>
    /// <param name="names">Recently decoded topics.</param>
    public SocketIpcMessageReader(ISocketIpcTranscoder? transcoder, long maxMessageSize, int maxDepth, Utf8NameCache names)
    {
        _custom = transcoder is null or JsonSocketIpcTranscoder ? null : transcoder;
        _frames = _custom is null ? new DelimitedMessageReader(SocketIpcCodec.Delimiter, maxMessageSize) : null;
        _maxDepth = maxDepth;
        _names = names;
        MaxMessageSize = maxMessageSize;
    }

    /// <inheritdoc/>
    public long MaxMessageSize
    {
        get => _maxMessageSize;
        set
        {
            _maxMessageSize = value;
            if (_frames is not null)
            {
                _frames.MaxMessageSize = value;
            }
        }
    }

    /// <inheritdoc/>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out SocketIpcMessage message)
    {
        if (_frames is not null)
        {
            if (!_frames.TryParseMessage(input, ref consumed, ref examined, out var frame))
            {
                message = default;
                return false;
            }

            var bytes = frame.ToArray();
            var scan = SocketIpcCodec.Scan(bytes, _maxDepth, _names);
            message = new SocketIpcMessage(scan.Topic, scan.MessageStart < 0 ? (ReadOnlyMemory<byte>?)null : bytes.AsMemory(scan.MessageStart, scan.MessageLength));
            return true;
        }

        var remaining = input;
        if (!_custom!.TryDecode(ref remaining, _maxMessageSize, out var decoded))
        {
            examined = input.End;
            message = default;
            return false;
        }

        consumed = remaining.Start;
        examined = consumed;
        if (decoded.Topic is null)
        {
            throw new DecodeException("The socket-ipc transcoder decoded a message without a topic.");
        }

        if (decoded.MessageJson is not { } json)
        {
            message = new SocketIpcMessage(decoded.Topic, null);
            return true;
        }

        var copy = json.ToArray();
        JsonArgs.ValidateValue(copy, _maxDepth, "message");
        message = new SocketIpcMessage(decoded.Topic, copy);
        return true;
    }
}
