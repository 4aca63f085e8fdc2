using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>
/// A subscriber of a node's stream that throws harms only itself: the subscribers after it still get everything, the link
/// and the node go on, and the exception is published on <see cref="UhuraNode.Errors"/>.
/// </summary>
public class NodeSubscriberIsolationTests
{
    private static readonly InvalidOperationException Boom = new("boom");

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_throwing_Messages_subscriber_deafens_nobody_breaks_no_link_and_is_reported_on_Errors(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", UhuraNodeOptions.Default with { Protocol = protocol });
        var b = await kit.StartAsync("b", UhuraNodeOptions.Default with { Protocol = protocol });
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();

        using var thrower = a.Messages.Subscribe(_ => throw Boom);
        var second = a.Messages.Select(m => (int)m.Packet["n"]!).Take(3).ToList().ToTask().For();
        var error = Wait.First(a.Errors);
        b.Send("a", new { n = 1 });
        b.Send("a", new { n = 2 });
        var reported = Assert.IsType<SubscriberException>(await error);
        Assert.Equal("UhuraNode.Messages", reported.StreamName);
        Assert.Same(Boom, reported.InnerException);

        b.Send("a", new { n = 3 }); // the link survived the throws
        Assert.Equal([1, 2, 3], await second);
        Assert.Contains("b", a.Peers);
    }

    [Fact]
    public async Task A_throwing_Events_or_Event_subscriber_deafens_nobody_and_is_reported_on_Errors()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        await b.WhenConnectedAsync("a").For();

        using var throwsOnEvents = a.Events.Subscribe(_ => throw Boom);
        using var throwsOnEvent = a.Event("tick").Subscribe(_ => throw Boom);
        var events = a.Events.Select(e => e.Arg<int>(0)).Take(3).ToList().ToTask().For();
        var ticks = a.Event("tick").Select(e => e.Arg<int>(0)).Take(3).ToList().ToTask().For();
        var errors = a.Errors.OfType<SubscriberException>().Distinct(e => e.StreamName).Take(2).ToList().ToTask().For();
        b.Emit("tick", 1);
        b.Emit("tick", 2);
        b.Emit("tick", 3);

        Assert.Equal([1, 2, 3], await events);
        Assert.Equal([1, 2, 3], await ticks);
        var reported = await errors;
        Assert.Contains(reported, e => e.StreamName == "UhuraNode.Events" && e.EventName == "tick");
        Assert.Contains(reported, e => e.StreamName == "UhuraNode.Event" && e.EventName == "tick");
        Assert.Contains("b", a.Peers);
    }

    [Fact]
    public async Task Throwing_NodeEvents_PeerConnected_and_PeerDisconnected_subscribers_deafen_nobody()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        using var t1 = b.NodeEvents.Subscribe(_ => throw Boom);
        using var t2 = b.PeerConnected.Subscribe(_ => throw Boom);
        using var t3 = b.PeerDisconnected.Subscribe(_ => throw Boom);
        var connected = Wait.First(b.PeerConnected);
        var disconnected = Wait.First(b.PeerDisconnected);
        var initialized = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Initialized);
        var streams = b.Errors.OfType<SubscriberException>().Select(e => e.StreamName).Distinct().Take(3).ToList().ToTask().For();

        await b.ConnectAsync(a.Info!).For();
        Assert.Equal("a", await connected);
        Assert.Equal("a", (await initialized).PeerId);
        var goneAtA = Wait.First(a.PeerDisconnected);
        Assert.True(b.Disconnect("a"));
        Assert.Equal("a", await disconnected);
        Assert.Equal("b", await goneAtA);
        Assert.Equal(["UhuraNode.NodeEvents", "UhuraNode.PeerConnected", "UhuraNode.PeerDisconnected"], (await streams).Order(StringComparer.Ordinal));

        // The node still works: it connects again.
        var again = Wait.First(b.PeerConnected);
        await b.ConnectAsync(a.Info!).For();
        Assert.Equal("a", await again);
    }

    [Fact]
    public async Task A_throwing_Listening_subscriber_neither_fails_ListenAsync_nor_deafens_the_others()
    {
        await using var node = new UhuraNode();
        using var thrower = node.Listening.Subscribe(_ => throw Boom);
        var second = Wait.First(node.Listening);
        var error = Wait.First(node.Errors);

        var info = await node.ListenAsync("tcp://127.0.0.1:0").For();

        Assert.Equal(info, await second);
        Assert.Equal("UhuraNode.Listening", Assert.IsType<SubscriberException>(await error).StreamName);
    }

    [Fact]
    public async Task A_subscriber_that_throws_on_completion_does_not_stop_the_node_from_closing()
    {
        var node = new UhuraNode();
        await node.ListenAsync("tcp://127.0.0.1:0").For();
        using var t1 = node.Messages.Subscribe(_ => { }, () => throw Boom);
        using var t2 = node.NodeEvents.Subscribe(_ => { }, () => throw Boom);
        var messagesEnd = node.Messages.DefaultIfEmpty().ToTask().For();
        var nodeEventsEnd = node.NodeEvents.LastOrDefaultAsync().ToTask().For();
        var errors = node.Errors.ToList().ToTask().For();

        await node.CloseAsync().For();

        await messagesEnd;
        await nodeEventsEnd;
        Assert.Equal(2, (await errors).Count);
    }

    [Fact]
    public async Task A_throwing_Errors_subscriber_is_swallowed_and_the_other_Errors_subscribers_still_hear()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        using var throwsOnErrors = a.Errors.Subscribe(_ => throw Boom);
        using var throwsOnMessages = a.Messages.Subscribe(_ => throw Boom);
        var error = Wait.First(a.Errors);
        var messages = a.Messages.Take(2).ToList().ToTask().For();

        b.Send("a", new { n = 1 });
        b.Send("a", new { n = 2 });

        Assert.Equal("UhuraNode.Messages", Assert.IsType<SubscriberException>(await error).StreamName);
        Assert.Equal(2, (await messages).Count);
    }
}
