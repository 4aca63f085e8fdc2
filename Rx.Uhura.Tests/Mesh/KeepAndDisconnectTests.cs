using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Keep flags decide whether a link lives; <see cref="UhuraNode.Disconnect"/> ends one for good.</summary>
public class KeepAndDisconnectTests
{
    private static UhuraNodeOptions Options(MeshProtocol protocol) => UhuraNodeOptions.Default with { Protocol = protocol, Reconnect = MeshSteps.FastReconnect };

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_link_that_neither_side_keeps_closes_and_both_sides_forget_the_peer(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        var aForgetsB = Wait.First(a.PeerDisconnected, id => id == "b");
        var bForgetsA = Wait.First(b.PeerDisconnected, id => id == "a");

        Assert.Equal("a", await b.ConnectAsync(a.Info!, keep: false).For());

        await aForgetsB;
        await bForgetsA;
        await Wait.First(a.OpenLinks, n => n == 0);
        await Wait.First(b.OpenLinks, n => n == 0);
        Assert.Empty(a.Peers);
        Assert.Empty(b.Peers);
        Assert.False(b.Send("a", new { late = true }));
        Assert.False(a.Send("b", new { late = true }));
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task One_side_keeping_holds_the_link_until_it_stops_keeping_then_both_sides_drop_it(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        using var atA = MeshSteps.Record(a);
        using var atB = MeshSteps.Record(b);

        Assert.Equal("a", await b.ConnectAsync(a.Info!, keep: true).For());
        await a.WhenConnectedAsync("b").For();

        // Both keep flags have crossed once a packet went there and back (a link is ordered).
        await MeshSteps.RoundTripAsync(b, a);
        await MeshSteps.RoundTripAsync(a, b);
        Assert.Equal(["b"], a.Peers);
        Assert.Equal(["a"], b.Peers);
        Assert.Empty(atA.KindsFor("b", NodeEventKind.Disconnect, NodeEventKind.PeerGone));
        Assert.Empty(atB.KindsFor("a", NodeEventKind.Disconnect, NodeEventKind.PeerGone));

        // b stops keeping; a never kept: the link goes, on both sides, and b does not dial again.
        var aForgetsB = Wait.First(a.PeerDisconnected, id => id == "b");
        var bForgetsA = Wait.First(b.PeerDisconnected, id => id == "a");
        b.Keep("a", false);
        await bForgetsA; // node events reach the subscribers from the node's dispatcher, after the call returned
        Assert.Equal([NodeEventKind.Disconnect, NodeEventKind.PeerGone], atB.KindsFor("a", NodeEventKind.Disconnect, NodeEventKind.PeerGone));
        await aForgetsB;
        await Wait.First(a.OpenLinks, n => n == 0);
        await Wait.First(b.OpenLinks, n => n == 0);
        Assert.Empty(a.Peers);
        Assert.Empty(b.Peers);
        Assert.False(b.Send("a", new { late = true }));
        Assert.Empty(atB.Of(NodeEventKind.Backoff));
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Keep_called_before_the_peer_is_known_is_remembered_when_it_connects(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        using var atA = MeshSteps.Record(a);
        using var atB = MeshSteps.Record(b);

        a.Keep("b"); // b is not known yet
        Assert.Equal("a", await b.ConnectAsync(a.Info!, keep: false).For());
        await a.WhenConnectedAsync("b").For();

        // Without the remembered flag neither side would keep and the link would close (the test above).
        await MeshSteps.RoundTripAsync(b, a);
        await MeshSteps.RoundTripAsync(a, b);
        Assert.Equal(["b"], a.Peers);
        Assert.Equal(["a"], b.Peers);
        Assert.Empty(atA.KindsFor("b", NodeEventKind.Disconnect, NodeEventKind.PeerGone));
        Assert.Empty(atB.KindsFor("a", NodeEventKind.Disconnect, NodeEventKind.PeerGone));
    }

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Disconnect_forgets_a_kept_peer_at_once_without_reconnecting_and_the_other_side_sees_the_link_end(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        Assert.Equal("a", await b.ConnectAsync(a.Info!, keep: true).For());
        await a.WhenConnectedAsync("b").For();
        await MeshSteps.RoundTripAsync(b, a);
        using var atB = MeshSteps.Record(b);
        var aSeesTheEnd = Wait.First(a.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "b");
        var aForgetsB = Wait.First(a.PeerDisconnected, id => id == "b");

        Assert.False(b.Disconnect("nobody"));
        var bForgetsA = Wait.First(b.PeerDisconnected, id => id == "a");
        Assert.True(b.Disconnect("a"));

        // Raised by Disconnect (delivered from the node's dispatcher), the link's end raising nothing more.
        await bForgetsA;
        Assert.Equal([NodeEventKind.Disconnect, NodeEventKind.PeerGone], atB.KindsFor("a"));
        Assert.Empty(b.Peers);
        Assert.False(b.Send("a", new { late = true }));
        Assert.False(b.Disconnect("a"));

        await aSeesTheEnd;
        await aForgetsB;
        await Wait.First(b.OpenLinks, n => n == 0);
        await Wait.First(a.OpenLinks, n => n == 0);

        // b kept a, but nothing dials again (a reconnection would start at once: its first attempt has no delay).
        var bDials = MeshSteps.During(b.NodeEvents, TimeSpan.FromMilliseconds(300));
        var aAccepts = MeshSteps.During(a.NodeEvents, TimeSpan.FromMilliseconds(300));
        Assert.Empty(await bDials);
        Assert.Empty(await aAccepts);
        Assert.Equal([NodeEventKind.Disconnect, NodeEventKind.PeerGone], atB.KindsFor("a"));
    }
}
