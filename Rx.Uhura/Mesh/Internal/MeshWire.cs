using System.Buffers;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// The wire a mesh node speaks, plugged into its links: how each of the node's own messages (hello, keep flag,
/// heartbeat, goodbye, application packet) is encoded, and, per link, how a read's bytes become frames or packets
/// handed to the node. The node and its links never branch on <see cref="MeshProtocol"/> for these; what differs in
/// meaning (the bus, masterless's priorities) is the node's, in <c>UhuraNode.Native.cs</c> and
/// <c>UhuraNode.Masterless.cs</c>.
/// </summary>
internal abstract class MeshWire
{
    /// <summary>The wire of <paramref name="protocol"/> (stateless: one per process).</summary>
    public static MeshWire For(MeshProtocol protocol) => protocol == MeshProtocol.Masterless ? Masterless.Instance : Native.Instance;

    /// <summary>The bytes a packet's encoding adds around its JSON (what <c>MaxPacketSize</c> does not count).</summary>
    public abstract int PacketOverhead { get; }

    /// <summary>The heartbeat a quiet link sends.</summary>
    public abstract byte[] Heartbeat { get; }

    /// <summary>The greeting an outgoing link sends first.</summary>
    public abstract byte[] Hello(string id, string? info, string? channel, string incarnation);

    /// <summary>The goodbye that tells the peer why the link closes, or null when the wire has none (it just closes).</summary>
    public abstract byte[]? Goodbye(ReadOnlySpan<byte> reason);

    /// <summary>Tells the peer whether this side keeps (redials) the link.</summary>
    public abstract byte[] Keep(bool keep);

    /// <summary>An application packet (a JSON object).</summary>
    public abstract byte[] Packet(JToken packet);

    /// <summary>A link's reader of this wire (it keeps the partial frame between reads).</summary>
    public abstract Reader CreateReader(int maxDepth);

    /// <summary>One link's decoder: hands whole frames or packets to the node until it ends the link.</summary>
    public abstract class Reader
    {
        /// <summary>Whether a stream that ends inside a frame is an error (the masterless reader parses such a tail instead).</summary>
        public abstract bool CutFrameIsError { get; }

        /// <summary>Decodes what <paramref name="buffer"/> holds; <see cref="ReadProgress.Stop"/> when the node ended the link.</summary>
        public abstract ReadProgress Read(UhuraNode node, MeshLink link, in ReadOnlySequence<byte> buffer, bool isCompleted);
    }

    /// <summary>Rx.Uhura's native mesh wire: typed, length-prefixed frames; a bus with sequence numbers and acks.</summary>
    private sealed class Native : MeshWire
    {
        public static readonly Native Instance = new();

        private static readonly byte[] PingFrame = NativeMeshCodec.Frame(MeshFrameType.Ping, ReadOnlySpan<byte>.Empty);
        private static readonly byte[] KeepFrame = NativeMeshCodec.Frame(MeshFrameType.Keep, [1]);
        private static readonly byte[] NoKeepFrame = NativeMeshCodec.Frame(MeshFrameType.Keep, [0]);

        public override int PacketOverhead => NativeMeshCodec.HeaderSize;

        public override byte[] Heartbeat => PingFrame;

        public override byte[] Hello(string id, string? info, string? channel, string incarnation)
            => NativeMeshCodec.Frame(MeshFrameType.Hello, new JObject { ["v"] = 1, ["id"] = id, ["info"] = info is { Length: > 0 } ? info : null, ["channel"] = channel, ["inc"] = incarnation });

        public override byte[]? Goodbye(ReadOnlySpan<byte> reason) => NativeMeshCodec.Frame(MeshFrameType.Close, reason);

        public override byte[] Keep(bool keep) => keep ? KeepFrame : NoKeepFrame;

        public override byte[] Packet(JToken packet) => NativeMeshCodec.Frame(MeshFrameType.Packet, packet);

        public override Reader CreateReader(int maxDepth) => new FrameReader(maxDepth);

        private sealed class FrameReader(int maxDepth) : Reader
        {
            private readonly NativeMeshFrameReader _frames = new(NativeMeshCodec.MaxHandshakeFrame, maxDepth);

            public override bool CutFrameIsError => true;

            public override ReadProgress Read(UhuraNode node, MeshLink link, in ReadOnlySequence<byte> buffer, bool isCompleted)
            {
                var consumed = buffer.Start;
                var examined = buffer.Start;
                // Relayed bus events may carry a path a little longer than the sender's packet limit (ForwardSlack).
                _frames.MaxMessageSize = link.Phase == LinkPhase.Handshaking ? NativeMeshCodec.MaxHandshakeFrame : node.Options.MaxPacketSize + UhuraNode.ForwardSlack;
                while (_frames.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var frame))
                {
                    if (!node.OnNativeFrame(link, frame) || link.IsClosing)
                    {
                        return new ReadProgress(consumed, examined, true);
                    }
                }

                return new ReadProgress(consumed, examined);
            }
        }
    }

    /// <summary>The masterless package's wire: JSON values separated by CRLF; no bus.</summary>
    private sealed class Masterless : MeshWire
    {
        public static readonly Masterless Instance = new();

        private static readonly byte[] TrueHeartbeat = "true\r\n"u8.ToArray();
        private static readonly byte[] KeepPacket = "[true]\r\n"u8.ToArray();
        private static readonly byte[] NoKeepPacket = "[false]\r\n"u8.ToArray();

        public override int PacketOverhead => 2; // the CRLF

        public override byte[] Heartbeat => TrueHeartbeat;

        public override byte[] Hello(string id, string? info, string? channel, string incarnation)
            => MasterlessCodec.Encode(new JObject { ["id"] = id, ["info"] = info, [UhuraNode.UhuraMark] = 1 });

        public override byte[]? Goodbye(ReadOnlySpan<byte> reason) => null;

        public override byte[] Keep(bool keep) => keep ? KeepPacket : NoKeepPacket;

        public override byte[] Packet(JToken packet) => MasterlessCodec.Encode(packet);

        public override Reader CreateReader(int maxDepth) => new PacketReader(maxDepth);

        private sealed class PacketReader(int maxDepth) : Reader
        {
            private readonly MasterlessPacketReader _packets = new(NativeMeshCodec.MaxHandshakeFrame, maxDepth);

            public override bool CutFrameIsError => false;

            public override ReadProgress Read(UhuraNode node, MeshLink link, in ReadOnlySequence<byte> buffer, bool isCompleted)
            {
                var consumed = buffer.Start;
                var examined = buffer.Start;
                _packets.MaxMessageSize = link.Phase == LinkPhase.Handshaking ? NativeMeshCodec.MaxHandshakeFrame : node.Options.MaxPacketSize;
                while (_packets.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var packet))
                {
                    if (!node.OnMasterlessPacket(link, packet) || link.IsClosing)
                    {
                        return new ReadProgress(consumed, examined, true);
                    }
                }

                if (isCompleted && _packets.TryParseLast(buffer.Slice(consumed), out var tail))
                {
                    // The Node reader parses an unterminated last chunk at the end of the stream: so do we.
                    return new ReadProgress(buffer.End, buffer.End, !node.OnMasterlessPacket(link, tail));
                }

                return new ReadProgress(consumed, examined);
            }
        }
    }
}
