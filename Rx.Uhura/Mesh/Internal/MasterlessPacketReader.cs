using System.Buffers;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// The masterless wire's <see cref="IMessageReader{TMessage}"/>: a packet is one JSON value ended by <c>\r\n</c>, cut
/// by a <see cref="DelimitedMessageReader"/> (each byte searched once) and parsed whole.
/// </summary>
internal sealed class MasterlessPacketReader(long maxMessageSize, int maxDepth) : IMessageReader<JToken>
{
    private readonly DelimitedMessageReader _packets = new(MasterlessCodec.CrLf, maxMessageSize);

    /// <inheritdoc/>
    public long MaxMessageSize
    {
        get => _packets.MaxMessageSize;
        set => _packets.MaxMessageSize = value;
    }

    /// <inheritdoc/>
    /// <exception cref="DecodeException">The packet is not one JSON value.</exception>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out JToken message)
    {
        if (!_packets.TryParseMessage(input, ref consumed, ref examined, out var packet))
        {
            message = null!;
            return false;
        }

        message = NativeMeshCodec.Parse(packet, maxDepth, type: null);
        return true;
    }

    /// <summary>
    /// At the end of the stream: the last packet left without its <c>\r\n</c> (the Node reader parses it too), or
    /// false when only whitespace remains.
    /// </summary>
    public bool TryParseLast(in ReadOnlySequence<byte> rest, out JToken message)
        => MasterlessCodec.TryReadTail(rest, maxDepth, out message);
}
