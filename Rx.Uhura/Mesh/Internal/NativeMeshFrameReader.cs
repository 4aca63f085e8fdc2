using System.Buffers;
using Rx.Uhura.Protocol;
using static Rx.Uhura.Mesh.Internal.NativeMeshCodec;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// The native mesh wire's <see cref="IMessageReader{TMessage}"/>: <c>u32 big-endian length (type byte + body), u8
/// type, body</c>. Keeps no scan state (the length comes first). A link starts it at
/// <see cref="NativeMeshCodec.MaxHandshakeFrame"/> and raises it once the peer is identified.
/// </summary>
internal sealed class NativeMeshFrameReader(long maxMessageSize, int maxDepth) : IMessageReader<MeshFrame>
{
    /// <inheritdoc/>
    public long MaxMessageSize { get; set; } = maxMessageSize;

    /// <inheritdoc/>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out MeshFrame message)
    {
        message = default;
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadBigEndian(out int signedLength))
        {
            examined = input.End;
            return false;
        }

        var length = (uint)signedLength;
        if (length == 0)
        {
            throw new DecodeException("A mesh frame declared a length of 0.");
        }

        if (length > MaxMessageSize)
        {
            throw new FrameTooLargeException(MaxMessageSize);
        }

        if (reader.Remaining < length)
        {
            examined = input.End;
            return false;
        }

        reader.TryRead(out var typeByte);
        var type = (MeshFrameType)typeByte;
        var body = input.Slice(reader.Position, length - 1);
        message = type switch
        {
            MeshFrameType.Hello or MeshFrameType.Welcome or MeshFrameType.Claim or MeshFrameType.Confirm or MeshFrameType.Refuse
                => new MeshFrame(type, Json: ParseObject(body, maxDepth, type)),
            MeshFrameType.Keep => body.Length == 1 ? new MeshFrame(type, Flag: ByteAt(body, 0) != 0) : throw Malformed(type, "1 byte"),
            MeshFrameType.Ping => body.Length == 0 ? new MeshFrame(type) : throw Malformed(type, "no body"),
            MeshFrameType.Packet => new MeshFrame(type, Json: Parse(body, maxDepth, type)),
            MeshFrameType.Sync => body.Length == 9 ? new MeshFrame(type, Number: ReadUInt64(body), Flag: ByteAt(body, 8) != 0) : throw Malformed(type, "9 bytes"),
            MeshFrameType.Ack => body.Length == 8 ? new MeshFrame(type, Number: ReadUInt64(body)) : throw Malformed(type, "8 bytes"),
            MeshFrameType.Bus => body.Length > 8 ? new MeshFrame(type, Json: ParseObject(body.Slice(8), maxDepth, type), Number: ReadUInt64(body)) : throw Malformed(type, "a sequence number and a JSON body"),
            MeshFrameType.Close => new MeshFrame(type, Text: DecodeText(body)),
            _ => throw new ProtocolException($"Unknown mesh frame type {(byte)type}."),
        };
        consumed = body.End;
        examined = consumed;
        return true;
    }

    /// <summary>One byte of a body that may be split across segments anywhere.</summary>
    private static byte ByteAt(in ReadOnlySequence<byte> body, long offset)
    {
        Span<byte> one = stackalloc byte[1];
        body.Slice(offset, 1).CopyTo(one);
        return one[0];
    }
}
