using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Connections a node refuses in the handshake: one peer too many, and itself.</summary>
public class AdmissionTests
{
    [Fact]
    public async Task A_node_with_MaxPeers_2_refuses_a_third_peer_as_full_and_its_two_peers_keep_working()
    {
        await using var kit = new MeshTestKit();
        var hub = await kit.StartAsync("hub", UhuraNodeOptions.Default with { MaxPeers = 2 });
        var p1 = await kit.StartAsync("p1");
        var p2 = await kit.StartAsync("p2");
        var p3 = await kit.StartAsync("p3");
        await p1.ConnectAsync(hub.Info!).For();
        await p2.ConnectAsync(hub.Info!).For();
        await hub.WhenConnectedAsync("p1").For();
        await hub.WhenConnectedAsync("p2").For();

        var refusedAtHub = Wait.First(hub.NodeEvents, e => e.Kind == NodeEventKind.Refused);
        var error = await Assert.ThrowsAsync<PeerRefusedException>(() => p3.ConnectAsync(hub.Info!).For());
        Assert.Equal(PeerRefusal.Full, error.Reason); // the refusal comes before the hub says who it is
        var refused = await refusedAtHub;
        Assert.Equal("p3", refused.PeerId);
        Assert.Equal(PeerRefusal.Full, Assert.IsType<PeerRefusedException>(refused.Error).Reason);

        Assert.Empty(p3.Peers);
        Assert.Equal(["p1", "p2"], hub.Peers.Order());
        await Wait.First(hub.OpenLinks, n => n == 2);
        await Wait.First(p3.OpenLinks, n => n == 0);
        await MeshSteps.RoundTripAsync(hub, p1);
        await MeshSteps.RoundTripAsync(p2, hub);
    }

    [Fact]
    public async Task A_masterless_node_with_MaxPeers_2_closes_a_third_peer_and_its_two_peers_keep_working()
    {
        // The masterless wire cannot say why: the refuser closes the socket with nothing sent, as masterless does.
        var options = UhuraNodeOptions.Default with { Protocol = MeshProtocol.Masterless };
        await using var kit = new MeshTestKit();
        var hub = await kit.StartAsync("hub", options with { MaxPeers = 2 });
        var p1 = await kit.StartAsync("p1", options);
        var p2 = await kit.StartAsync("p2", options);
        var p3 = await kit.StartAsync("p3", options);
        await p1.ConnectAsync(hub.Info!).For();
        await p2.ConnectAsync(hub.Info!).For();
        await hub.WhenConnectedAsync("p1").For();
        await hub.WhenConnectedAsync("p2").For();

        var refusedAtHub = Wait.First(hub.NodeEvents, e => e.Kind == NodeEventKind.Refused);
        await Assert.ThrowsAsync<PeerLostException>(() => p3.ConnectAsync(hub.Info!).For());
        var refused = await refusedAtHub;
        Assert.Equal("p3", refused.PeerId);
        Assert.Equal(PeerRefusal.Full, Assert.IsType<PeerRefusedException>(refused.Error).Reason);

        Assert.Empty(p3.Peers);
        Assert.Equal(["p1", "p2"], hub.Peers.Order());
        await Wait.First(hub.OpenLinks, n => n == 2);
        await MeshSteps.RoundTripAsync(hub, p1);
        await MeshSteps.RoundTripAsync(p2, hub);
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_node_that_connects_to_itself_is_refused_as_self_and_adds_no_peer(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var node = await kit.StartAsync("solo", UhuraNodeOptions.Default with { Protocol = protocol });
        using var log = MeshSteps.Record(node);
        var refused = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.Refused);

        var error = await Assert.ThrowsAsync<PeerRefusedException>(() => node.ConnectAsync(node.Info!).For());
        Assert.Equal(PeerRefusal.Self, error.Reason);
        Assert.Equal(PeerRefusal.Self, Assert.IsType<PeerRefusedException>((await refused).Error).Reason);
        Assert.Empty(node.Peers);
        Assert.False(node.Send("solo", new { x = 1 }));
        await Wait.First(node.OpenLinks, n => n == 0);
        Assert.Empty(log.Of(NodeEventKind.Initialized));
        Assert.Empty(log.Of(NodeEventKind.PeerGone));
    }
}
