using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Mesh;

/// <summary><see cref="UhuraNode.Send(string, object)"/> and its multi-dispatch overload: who is reached, what is refused, what waits.</summary>
public class SendTests
{
    private static UhuraNodeOptions Options(MeshProtocol protocol) => UhuraNodeOptions.Default with { Protocol = protocol, Reconnect = MeshSteps.FastReconnect };

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Send_to_an_unknown_id_is_false_and_a_packet_that_is_not_a_json_object_is_an_argument_error(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();

        Assert.False(b.Send("nobody", new { x = 1 }));
        Assert.Equal(0, b.Send(["nobody", "else"], new { x = 1 }));
        foreach (var bad in new object[] { new[] { 1 }, 5, "s", new JArray(1), JValue.CreateNull(), true })
        {
            var error = Assert.Throws<ArgumentException>(() => b.Send("a", bad));
            Assert.Equal("packet", error.ParamName);
            Assert.Throws<ArgumentException>(() => b.Send(["a"], bad));
            Assert.Throws<ArgumentException>(() => b.Send("nobody", bad)); // checked before the id
        }

        // Nothing of the refused packets went out: the next packet a gets is the good one.
        var first = Wait.First(a.Messages);
        Assert.True(b.Send("a", new { good = 1 }));
        Assert.Equal(1, (int)(await first).Packet["good"]!);
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_packet_or_bus_event_nested_100000_deep_looping_or_holding_a_task_is_an_encode_error_and_the_link_carries_on(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();

        // Serialized recursively, the first overflowed the stack (the process ended); the task blocked the sender on its Result.
        JToken deep = new JObject();
        for (var i = 0; i < 100_000; i++)
        {
            deep = new JObject { ["x"] = deep };
        }

        object[] absurd = [deep, new { x = new Recursive() }, new { pending = new TaskCompletionSource<int>().Task }, new { x = Nested(UhuraNodeOptions.Default.MaxJsonDepth) }];
        foreach (var bad in absurd)
        {
            Assert.Throws<EncodeException>(() => b.Send("a", bad));
            Assert.Throws<EncodeException>(() => b.Send(["a"], bad));
            if (protocol == MeshProtocol.Native)
            {
                Assert.Throws<EncodeException>(() => b.Emit("bad", bad));
            }
        }

        var first = Wait.First(a.Messages);
        Assert.True(b.Send("a", new { good = 1 }));
        Assert.Equal(1, (int)(await first).Packet["good"]!);
    }

    private static JToken Nested(int depth)
    {
        JToken token = new JArray(1);
        for (var i = 1; i < depth; i++)
        {
            token = new JArray(token);
        }

        return token;
    }

    /// <summary>Refers to itself: a reference loop.</summary>
    private sealed class Recursive
    {
        public Recursive Self => this;
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Send_to_several_ids_counts_the_peers_and_sends_a_repeated_id_twice(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        await a.ConnectAsync(b.Info!).For();
        await b.WhenConnectedAsync("a").For();

        var atB = b.Messages.Select(m => m.Packet.ToString(Newtonsoft.Json.Formatting.None)).Take(3).ToList().ToTask().For();
        Assert.Equal(2, a.Send(["b", "nobody", "b"], new { n = 1 }));
        Assert.True(a.Send("b", new { n = 2 })); // the marker: had a third copy gone out, it would arrive before this

        Assert.Equal(["{\"n\":1}", "{\"n\":1}", "{\"n\":2}"], await atB);
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Packets_for_a_kept_peer_whose_link_is_down_wait_up_to_MaxQueuedPackets_and_arrive_in_order_when_it_is_back(MeshProtocol protocol)
    {
        const int bound = 5;
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol) with { MaxQueuedPackets = bound });
        await using var proxy = ChaosProxy.Start(UhuraEndpoint.Parse(a.Info!));
        Assert.Equal("a", await b.ConnectAsync(proxy.Uri, keep: true).For());
        await a.WhenConnectedAsync("b").For();
        await MeshSteps.RoundTripAsync(b, a);

        // The link goes down and stays down: every reconnection attempt is reset by the proxy.
        var lost = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "a");
        var retrying = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Backoff && e.PeerId == "a");
        proxy.SetRefusing(true);
        Assert.Equal(1, proxy.CutAll());
        await lost;
        await retrying;

        var arrived = a.Messages.Where(m => m.SenderId == "b").Select(m => (int)m.Packet["k"]!).Take(bound + 1).ToList().ToTask().For();
        for (var k = 0; k < bound; k++)
        {
            Assert.True(b.Send("a", new { k }), $"packet {k} should be queued");
        }

        Assert.False(b.Send("a", new { k = 99 })); // past MaxQueuedPackets
        Assert.Equal(0, b.Send(["a", "a"], new { k = 98 }));
        Assert.Empty(b.Peers);

        var back = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Reconnect && e.PeerId == "a");
        proxy.SetRefusing(false);
        await back;
        Assert.True(b.Send("a", new { k = bound })); // after the queued ones, on the new link

        Assert.Equal(Enumerable.Range(0, bound + 1), await arrived);
    }
}
