using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary><see cref="UhuraNode.CloseAsync"/>: every stream completes, peers see the end, the closed node refuses work.</summary>
public class NodeCloseTests
{
    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Closing_a_node_completes_its_streams_and_its_peer_sees_the_link_end(MeshProtocol protocol)
    {
        var options = UhuraNodeOptions.Default with { Protocol = protocol };
        await using var kit = new MeshTestKit();
        var peer = await kit.StartAsync("peer", options);
        await using var node = new UhuraNode(options with { NodeId = "node" });
        await node.ListenAsync("tcp://127.0.0.1:0").For();
        await node.ConnectAsync(peer.Info!, keep: true).For();
        await peer.WhenConnectedAsync("node").For();
        await MeshSteps.RoundTripAsync(node, peer);

        var messages = node.Messages.Count().ToTask();
        var events = node.Events.Count().ToTask();
        var nodeEvents = node.NodeEvents.Count().ToTask();
        var connected = node.PeerConnected.Count().ToTask();
        var disconnected = node.PeerDisconnected.Count().ToTask();
        var listening = node.Listening.Count().ToTask();
        var peerSeesEnd = Wait.First(peer.NodeEvents, e => e.Kind == NodeEventKind.Disconnect && e.PeerId == "node");
        var peerForgets = Wait.First(peer.PeerDisconnected, id => id == "node");

        var closing = node.CloseAsync();
        Assert.Same(closing, node.CloseAsync());
        await closing.For();

        Assert.Equal(0, await messages.For());
        Assert.Equal(0, await events.For());
        await nodeEvents.For();
        Assert.Equal(0, await connected.For());
        await disconnected.For();
        Assert.Equal(1, await listening.For()); // replays the address, then completes
        await peerSeesEnd; // the peer did not keep the node: it forgets it
        await peerForgets;
        Assert.Empty(node.Peers);
        Assert.Empty(peer.Peers);
        await Wait.First(peer.OpenLinks, n => n == 0);

        // Late subscribers learn at once that it is over.
        Assert.Equal(0, await node.Messages.Count().ToTask().For());
        Assert.Equal(0, await node.NodeEvents.Count().ToTask().For());

        // A closed node refuses work, and closes again without complaint.
        await Assert.ThrowsAsync<ObjectDisposedException>(() => node.ConnectAsync(peer.Info!));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => node.ListenAsync("tcp://127.0.0.1:0"));
        if (protocol == MeshProtocol.Native)
        {
            Assert.Throws<ObjectDisposedException>(() => node.Emit("late", 1));
        }

        await node.CloseAsync().For();
        await node.DisposeAsync();
    }

    [Fact]
    public async Task A_node_that_never_listened_closes_and_completes_its_streams()
    {
        var node = new UhuraNode(UhuraNodeOptions.Default with { NodeId = "idle" });
        var nodeEvents = node.NodeEvents.Count().ToTask();
        var listening = node.Listening.Count().ToTask();
        await node.CloseAsync().For();
        Assert.Equal(0, await nodeEvents.For());
        Assert.Equal(0, await listening.For());
        Assert.Throws<ObjectDisposedException>(() => node.Emit("late"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => node.ListenAsync("tcp://127.0.0.1:0"));
        await node.DisposeAsync();
    }

    [Fact]
    public async Task Closing_a_node_from_inside_its_own_subscriber_and_waiting_there_does_not_deadlock()
    {
        // A subscriber waits synchronously for its own node's close: the close used to wait for the subscribers, this one
        // included, for ever. Now the task it gets completes once the links are closed; the streams complete after it returns.
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var waited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var closer = b.Event("close").Subscribe(_ => waited.TrySetResult(b.CloseAsync().Wait(Wait.Timeout)));
        var completed = b.Events.LastOrDefaultAsync().ToTask().For();

        a.Emit("close", 1);

        Assert.True(await waited.Task.For(), "the close waited for the subscriber that waits for it");
        await completed; // the streams completed once that subscriber returned
        await b.CloseAsync().For(); // and the full close (from outside) completes too
        Assert.Empty(b.Peers);
    }
}
