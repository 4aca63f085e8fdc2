using System.Buffers.Binary;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Bad bytes from a raw socket end only that socket, with a typed reason; the node goes on serving a well-behaved peer.</summary>
public class MeshBadInputTests
{
    private const int MaxPacket = 1024;

    public static TheoryData<string> NativeBeforeHandshake => ["garbage", "zero length", "huge length", "unknown type", "hello without id", "hello not json", "packet first"];

    /// <summary>The bytes of a bad input and the error the node must end the socket with.</summary>
    private static (byte[] Bytes, Type Error) NativeBadInput(string name) => name switch
    {
        // "GET " read as a length prefix is over the 64 KiB a handshake frame may have.
        "garbage" => (Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\n"), typeof(FrameTooLargeException)),
        "zero length" => ([0, 0, 0, 0, 1], typeof(DecodeException)),
        "huge length" => (Prefix(NativeMeshCodec.MaxHandshakeFrame + 1), typeof(FrameTooLargeException)),
        "unknown type" => ([0, 0, 0, 3, 0xEE, (byte)'{', (byte)'}'], typeof(ProtocolException)),
        "hello without id" => (NativeMeshCodec.Frame(MeshFrameType.Hello, new JObject { ["v"] = 1, ["channel"] = "DEFAULT_CHANNEL", ["inc"] = "x" }), typeof(ProtocolException)),
        "hello not json" => (NativeMeshCodec.Frame(MeshFrameType.Hello, "hello, node"u8), typeof(DecodeException)),
        "packet first" => (NativeMeshCodec.Frame(MeshFrameType.Packet, new JObject { ["x"] = 1 }), typeof(ProtocolException)),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(NativeBeforeHandshake))]
    public async Task Bad_bytes_before_the_native_handshake_close_only_that_socket(string badInput)
    {
        var (bytes, expected) = NativeBadInput(badInput);
        var errors = new LogMessages();
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("node", UhuraNodeOptions.Default with { LoggerFactory = errors });
        var good = await ConnectedPeerAsync(kit, node, UhuraNodeOptions.Default);
        using var log = MeshSteps.Record(node);

        var reason = Wait.First(errors.Errors);
        await using (var raw = await RawAsync(node, baseline: 1))
        {
            await raw.WriteAsync(bytes);
            Assert.Equal(string.Empty, await raw.ReadToEndAsync()); // the node closed it, having sent nothing
        }

        Assert.IsType(expected, await reason);
        await Wait.First(node.OpenLinks, n => n == 1);
        Assert.Empty(log.Of(NodeEventKind.Disconnect));
        Assert.Equal(["good"], node.Peers);
        await MeshSteps.RoundTripAsync(good, node);
        await MeshSteps.RoundTripAsync(node, good);
    }

    [Theory]
    [InlineData("bad json")]
    [InlineData("too large")]
    public async Task Bad_bytes_after_the_native_handshake_end_that_link_with_a_typed_error(string badInput)
    {
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("node", UhuraNodeOptions.Default with { MaxPacketSize = MaxPacket });
        var good = await ConnectedPeerAsync(kit, node, UhuraNodeOptions.Default);
        var lost = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "raw");

        await using (var raw = await RawAsync(node, baseline: 1))
        {
            // "node" < "raw": the node arbitrates, so the raw peer claims and the node confirms.
            await raw.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Hello, new JObject { ["v"] = 1, ["id"] = "raw", ["channel"] = "DEFAULT_CHANNEL", ["inc"] = "r1" }));
            await raw.ReadBytesUntilAsync("\"lost\""u8.ToArray());
            await raw.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Claim, new JObject { ["lost"] = 0 }));
            await raw.ReadBytesUntilAsync("\"link\""u8.ToArray());
            Assert.Contains("raw", node.Peers);

            await raw.WriteAsync(badInput == "bad json"
                ? NativeMeshCodec.Frame(MeshFrameType.Packet, "{\"x\":"u8)
                : NativeMeshCodec.Frame(MeshFrameType.Packet, Encoding.UTF8.GetBytes(new JObject { ["x"] = new string('x', 2 * MaxPacket) }.ToString())));
            await raw.ReadToEndAsync();
        }

        var disconnect = await lost;
        Assert.IsType(badInput == "bad json" ? typeof(DecodeException) : typeof(FrameTooLargeException), disconnect.Error);
        await Wait.First(node.OpenLinks, n => n == 1);
        Assert.Equal(["good"], node.Peers);
        await MeshSteps.RoundTripAsync(good, node);
    }

    [Theory]
    [InlineData("bad json")]
    [InlineData("no id")]
    public async Task Bad_packets_in_the_masterless_handshake_close_only_that_socket(string badInput)
    {
        var options = UhuraNodeOptions.Default with { Protocol = MeshProtocol.Masterless };
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("node", options);
        var good = await ConnectedPeerAsync(kit, node, options);
        using var log = MeshSteps.Record(node);

        await using (var raw = await RawAsync(node, baseline: 1))
        {
            await raw.WriteAsync(badInput == "bad json" ? "{\"id\":\"raw\",\"info\":\r\n" : "{\"info\":\"tcp://127.0.0.1:1\"}\r\n");
            Assert.Equal(string.Empty, await raw.ReadToEndAsync()); // FIN with nothing sent, as masterless does
        }

        await Wait.First(node.OpenLinks, n => n == 1);
        Assert.Empty(log.Of(NodeEventKind.PeerId));
        Assert.Equal(["good"], node.Peers);
        await MeshSteps.RoundTripAsync(good, node);
        await MeshSteps.RoundTripAsync(node, good);
    }

    [Theory]
    [InlineData("bad json", typeof(DecodeException))]
    [InlineData("too large", typeof(FrameTooLargeException))]
    [InlineData("null", typeof(PeerLostException))]
    public async Task Bad_packets_after_the_masterless_handshake_end_that_link_with_a_typed_error(string badInput, Type expected)
    {
        var options = UhuraNodeOptions.Default with { Protocol = MeshProtocol.Masterless };
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("node", options with { MaxPacketSize = MaxPacket });
        var good = await ConnectedPeerAsync(kit, node, options);
        var lost = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "raw");
        var forgotten = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.PeerGone && e.PeerId == "raw");
        var heard = Wait.First(node.Messages, m => m.SenderId == "raw");

        await using (var raw = await RawAsync(node, baseline: 1))
        {
            await raw.WriteAsync("{\"id\":\"raw\",\"info\":\"tcp://127.0.0.1:1\"}\r\n");
            await raw.ReadUntilAsync("{\"id\":\"node\",\"uhura\":1}\r\n");
            await raw.WriteAsync("{\"priority\":1}\r\n");
            await raw.ReadUntilAsync("{\"confirm\":true}\r\n");
            await raw.WriteAsync("{\"hello\":1}\r\n");
            Assert.Equal(1, (int)(await heard).Packet["hello"]!); // the link works
            await raw.WriteAsync(badInput switch
            {
                "bad json" => "{\"x\":}\r\n",
                "too large" => new JObject { ["x"] = new string('x', 2 * MaxPacket) }.ToString(Newtonsoft.Json.Formatting.None) + "\r\n",
                _ => "null\r\n",
            });
            await raw.ReadToEndAsync();
        }

        var disconnect = await lost;
        Assert.IsType(expected, disconnect.Error);
        Assert.IsType(expected, (await forgotten).Error); // not kept: forgotten, with the same reason
        await Wait.First(node.OpenLinks, n => n == 1);
        Assert.Equal(["good"], node.Peers);
        await MeshSteps.RoundTripAsync(good, node);
    }

    private static byte[] Prefix(long length)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)length);
        return bytes;
    }

    /// <summary>A well-behaved peer "good", connected to <paramref name="node"/> and talking.</summary>
    private static async Task<UhuraNode> ConnectedPeerAsync(MeshTestKit kit, UhuraNode node, UhuraNodeOptions options)
    {
        var good = await kit.StartAsync("good", options);
        await good.ConnectAsync(node.Info!).For();
        await node.WhenConnectedAsync("good").For();
        await MeshSteps.RoundTripAsync(good, node);
        return good;
    }

    /// <summary>A raw socket to <paramref name="node"/>, once the node has accepted it (one more open link than <paramref name="baseline"/>).</summary>
    private static async Task<RawPeer> RawAsync(UhuraNode node, int baseline)
    {
        var raw = await RawPeer.ConnectAsync(UhuraEndpoint.Parse(node.Info!));
        await Wait.First(node.OpenLinks, n => n == baseline + 1);
        return raw;
    }
}
