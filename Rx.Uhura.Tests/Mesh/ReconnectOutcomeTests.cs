using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>What a kept peer's reconnection finds at its address: nobody for a while, another node, or the same node again.</summary>
public class ReconnectOutcomeTests
{
    private static UhuraNodeOptions Options(MeshProtocol protocol) => UhuraNodeOptions.Default with { Protocol = protocol, Reconnect = MeshSteps.FastReconnect };

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_kept_peer_replaced_by_a_node_with_another_id_at_its_address_is_given_up_as_an_unexpected_node(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var keeper = await kit.StartAsync("keeper", Options(protocol));
        await using var old = new UhuraNode(Options(protocol) with { NodeId = "old" });
        var address = await old.ListenAsync("tcp://127.0.0.1:0").For();
        Assert.Equal("old", await keeper.ConnectAsync(address, keep: true).For());
        await old.WhenConnectedAsync("keeper").For();
        await keeper.WhenConnectedAsync("old").For();
        await keeper.WhenDeliveredAsync().For(); // the first connection's events are not recorded below
        using var log = MeshSteps.Record(keeper);

        var lost = Wait.First(keeper.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "old");
        var givenUp = Wait.First(keeper.NodeEvents, e => e.Kind == NodeEventKind.PeerGone && e.PeerId == "old");
        await old.CloseAsync().For();
        await lost;

        await using var newcomer = new UhuraNode(Options(protocol) with { NodeId = "newcomer" });
        using var atNewcomer = MeshSteps.Record(newcomer);
        await MeshSteps.ListenAgainAsync(newcomer, address);

        var gone = await givenUp;
        var refusal = Assert.IsType<PeerRefusedException>(gone.Error is ReconnectFailedException failed ? failed.InnerException : gone.Error);
        Assert.Equal(PeerRefusal.UnexpectedNode, refusal.Reason);
        Assert.Equal("newcomer", refusal.PeerId);

        // The keeper never took the newcomer for the old node, nor kept it as a peer of its own.
        Assert.DoesNotContain(NodeEventKind.Reconnect, log.KindsFor("old"));
        Assert.DoesNotContain(NodeEventKind.Initialized, log.KindsFor("old"));
        Assert.Empty(keeper.Peers);
        Assert.False(keeper.Send("old", new { late = true }));
        await Wait.First(keeper.OpenLinks, n => n == 0);
        if (protocol == MeshProtocol.Native)
        {
            // Natively the keeper refuses in the handshake: the newcomer never counts it as a peer.
            Assert.Empty(atNewcomer.Of(NodeEventKind.Initialized));
            Assert.Empty(newcomer.Peers);
        }
    }

    [Fact]
    public async Task A_kept_peer_restarted_with_the_same_id_at_its_address_is_reconnected_and_gets_the_events_emitted_while_it_was_down()
    {
        var options = Options(MeshProtocol.Native) with { AcknowledgeInterval = TimeSpan.FromMilliseconds(50) };
        await using var kit = new MeshTestKit();
        var keeper = await kit.StartAsync("keeper", options);
        await using var first = new UhuraNode(options with { NodeId = "a" });
        var address = await first.ListenAsync("tcp://127.0.0.1:0").For();
        Assert.Equal("a", await keeper.ConnectAsync(address, keep: true).For());
        await first.WhenConnectedAsync("keeper").For();

        // An event the first incarnation received and acknowledged: it leaves the keeper's buffer.
        var before = Wait.First(first.Event("before"));
        var acknowledged = Wait.First(keeper.NodeEvents, e => e.Kind == NodeEventKind.Acknowledge && e.PeerId == "a" && e.Sequence >= 1);
        keeper.Emit("before", 0);
        await before;
        await acknowledged;

        var lost = Wait.First(keeper.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "a");
        await first.CloseAsync().For();
        await lost;
        keeper.Emit("during", 1);
        keeper.Emit("during", 2);

        // A new process with the same id at the same address.
        await using var second = new UhuraNode(options with { NodeId = "a" });
        var received = second.Events.Select(e => $"{e.Name} {e.Arg<int>(0)}").Take(3).ToList().ToTask().For();
        var back = Wait.First(keeper.NodeEvents, e => e.Kind == NodeEventKind.Reconnect && e.PeerId == "a");
        await MeshSteps.ListenAgainAsync(second, address);
        Assert.Equal("a", (await back).PeerId);
        keeper.Emit("after", 3);

        // The buffer is resent after the new incarnation's Sync: what it did not acknowledge, in order, then live events.
        Assert.Equal(["during 1", "during 2", "after 3"], await received);
        Assert.Equal(["a"], keeper.Peers);
        await MeshSteps.RoundTripAsync(keeper, second);
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task While_a_kept_peer_refuses_connections_the_node_raises_Backoff_events_with_growing_attempt_numbers(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        await using var proxy = ChaosProxy.Start(UhuraEndpoint.Parse(a.Info!));
        Assert.Equal("a", await b.ConnectAsync(proxy.Uri, keep: true).For());
        await a.WhenConnectedAsync("b").For();

        using var log = MeshSteps.Record(b);
        var backoffs = b.NodeEvents.Where(e => e.Kind == NodeEventKind.Backoff).Take(3).ToList().ToTask().For();
        proxy.SetRefusing(true);
        Assert.Equal(1, proxy.CutAll());
        var three = await backoffs;
        Assert.Equal([1, 2, 3], three.Select(e => e.Attempt));
        Assert.All(three, e =>
        {
            Assert.Equal("a", e.PeerId);
            Assert.NotNull(e.Error);
            Assert.InRange(e.Delay, TimeSpan.Zero, MeshSteps.FastReconnect.MaxDelay);
        });
        Assert.True(proxy.Refused >= 3);
        Assert.Empty(log.Of(NodeEventKind.PeerGone)); // still kept: retried, not forgotten

        var back = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Reconnect && e.PeerId == "a");
        proxy.SetRefusing(false);
        await back;
        await MeshSteps.RoundTripAsync(b, a);
    }
}
