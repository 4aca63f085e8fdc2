using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Scaleout;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Scaleout;

/// <summary>Broadcast and SendTo across servers sharing an <see cref="InMemoryBackplane"/>, over real sockets.</summary>
public sealed class InMemoryBackplaneTests
{
    [Fact]
    public async Task A_broadcast_from_one_server_reaches_the_clients_of_every_server_exactly_once()
    {
        using var backplane = new InMemoryBackplane();
        var published = backplane.Messages.Replay();
        using var _ = published.Connect();
        await using var cluster = await Cluster.StartAsync(backplane, backplane, backplane);
        var clients = new List<UhuraClient>();
        foreach (var server in new[] { 0, 0, 1, 2 })
        {
            clients.Add((await cluster.ConnectAsync(server)).Client);
        }

        var news = clients.Select(c => new Received(c, "news")).ToList();
        var end = clients.Select(c => new Received(c, "end")).ToList();

        Assert.Equal(2, cluster[0].Broadcast("news", 1, "two"));
        Assert.Equal(2, cluster[0].Broadcast("end"));

        foreach (var (n, e) in news.Zip(end))
        {
            await e.First();
            var first = await n.First();
            Assert.Equal(1, first.Arg<int>(0));
            Assert.Equal("two", first.Arg<string>(1));
        }

        // Each "end" arrived after its "news": had a copy come twice, it would be there by now.
        foreach (var n in news)
        {
            Assert.Single(await n.Count(1));
        }

        var broadcasts = await published.Take(2).ToList().ToTask().WaitAsync(Wait.Timeout);
        Assert.All(broadcasts, m => Assert.Equal(BackplaneMessageKind.Broadcast, m.Kind));
        Assert.All(broadcasts, m => Assert.Equal("s0", m.Origin));
        Assert.Equal("[\"news\",1,\"two\"]", System.Text.Encoding.UTF8.GetString(broadcasts[0].Payload.Span));
    }

    [Fact]
    public async Task Clients_on_the_Node_uhura_wire_get_broadcasts_and_sends_from_other_servers_too()
    {
        using var backplane = new InMemoryBackplane();
        await using var cluster = await Cluster.StartAsync(backplane, backplane);
        var (node, nodeLink) = await cluster.ConnectAsync(1, WireProtocol.NodeUhura);
        var (native, _) = await cluster.ConnectAsync(1);
        Assert.Equal(WireProtocol.NodeUhura, nodeLink.GetStatistics().Protocol);
        using var nodeNews = new Received(node, "news");
        using var nativeNews = new Received(native, "news");
        using var direct = new Received(node, "direct");

        Assert.Equal(0, cluster[0].Broadcast("news", "é", new[] { 1, 2 })); // no client of its own: the others deliver it
        foreach (var received in new[] { nodeNews, nativeNews })
        {
            var e = await received.First();
            Assert.Equal("é", e.Arg<string>(0));
            Assert.Equal([1, 2], e.Arg<int[]>(1));
        }

        await cluster[0].SendTo(nodeLink.Id, "direct", 7).For(); // completes on the Node-wire client's ack
        Assert.Equal(7, (await direct.First()).Arg<int>(0));
    }

    [Fact]
    public async Task Each_server_publishes_a_broadcast_once_and_receivers_do_not_publish_it_again()
    {
        using var backplane = new InMemoryBackplane();
        var published = new List<BackplaneMessage>();
        using var _ = backplane.Messages.Subscribe(m => { lock (published) { published.Add(m); } });
        await using var cluster = await Cluster.StartAsync(backplane, backplane, backplane);
        var (client, _) = await cluster.ConnectAsync(2);
        var end = new Received(client, "end");

        cluster[0].Broadcast("news");
        cluster[1].Broadcast("news");
        cluster[0].Broadcast("end");
        cluster[1].Broadcast("end");
        await end.Count(2); // each server's messages keep their order; the two servers' are not ordered

        lock (published)
        {
            Assert.Equal(["s0", "s0", "s1", "s1"], published.Select(m => m.Origin).Order());
        }
    }

    [Fact]
    public async Task SendTo_a_client_of_another_server_completes_when_the_client_acknowledges()
    {
        using var backplane = new InMemoryBackplane();
        await using var cluster = await Cluster.StartAsync(backplane, backplane);
        var (client, connection) = await cluster.ConnectAsync(1);
        var hello = new Received(client, "hello");

        Assert.False(cluster[0].TryGetConnection(connection.Id, out _));
        await cluster[0].SendTo(connection.Id, "hello", 42, new { x = "y" }).For();

        var e = await hello.First();
        Assert.Equal(42, e.Arg<int>(0));
        Assert.Equal("y", (string?)e.Args[1]["x"]);
    }

    [Fact]
    public async Task SendTo_a_local_client_does_not_touch_the_backplane()
    {
        using var backplane = new InMemoryBackplane();
        var published = 0;
        using var _ = backplane.Messages.Subscribe(_ => Interlocked.Increment(ref published));
        await using var cluster = await Cluster.StartAsync(backplane, backplane);
        var (client, connection) = await cluster.ConnectAsync(0);
        var hello = new Received(client, "hello");

        await cluster[0].SendTo(connection.Id, "hello").For();
        await hello.First();
        Assert.Equal(0, Volatile.Read(ref published));
    }

    [Fact]
    public async Task SendTo_a_client_that_left_another_server_fails_with_BadClientException_after_the_timeout()
    {
        using var backplane = new InMemoryBackplane();
        var scheduler = new TestScheduler();
        var options = UhuraServerOptions.Default with
        {
            Backplane = backplane,
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler) },
        };
        await using var a = new UhuraServer(options);
        await using var b = new UhuraServer(options);

        var send = a.SendTo("nobody", "hello", 1);
        scheduler.AdvanceBy(TimeSpan.FromSeconds(4.9).Ticks);
        Assert.False(send.IsCompleted);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(0.1).Ticks);
        var error = await Assert.ThrowsAsync<BadClientException>(() => send.For());
        Assert.Equal("nobody", error.ClientId);
        Assert.Equal("hello", error.EventName);
        Assert.Equal("[1]", error.ArgumentsJson);
    }

    [Fact]
    public async Task Without_a_backplane_SendTo_an_unknown_client_fails_at_once()
    {
        await using var server = new UhuraServer();
        var error = await Assert.ThrowsAsync<BadClientException>(() => server.SendTo("nobody", "hello"));
        Assert.Equal("nobody", error.ClientId);
    }

    [Fact]
    public async Task A_server_that_closes_leaves_the_others_working()
    {
        using var backplane = new InMemoryBackplane();
        await using var cluster = await Cluster.StartAsync(backplane, backplane, backplane);
        var (a, _) = await cluster.ConnectAsync(0);
        var (c, onC) = await cluster.ConnectAsync(2);
        var newsA = new Received(a, "news");
        var newsC = new Received(c, "news");
        var hello = new Received(c, "hello");

        await cluster[1].CloseAsync().For();
        cluster[0].Broadcast("news", "after");
        await cluster[0].SendTo(onC.Id, "hello").For();

        Assert.Equal("after", (await newsA.First()).Arg<string>(0));
        Assert.Equal("after", (await newsC.First()).Arg<string>(0));
        await hello.First();
        Assert.Throws<SendAfterCloseException>(() => cluster[1].Broadcast("news"));
    }

    [Fact]
    public async Task A_failing_backplane_is_reported_on_Errors_and_the_server_goes_on()
    {
        var failing = new FailingBackplane();
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Backplane = failing });
        var errors = server.Errors.Replay();
        using var _ = errors.Connect();
        await server.ListenAsync("tcp://127.0.0.1:0");
        var accepted = Wait.First(server.Connections);
        using var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.Native });
        var news = new Received(client, "news");
        await accepted;

        Assert.Equal(1, server.Broadcast("news"));
        await news.First();
        var error = await Wait.First(errors);
        Assert.IsType<BackplaneException>(error);
        Assert.IsType<InvalidOperationException>(error.InnerException);

        var send = await Assert.ThrowsAsync<SendException>(() => server.SendTo("elsewhere", "hello").For());
        Assert.Contains("backplane failed", send.Message);
    }

    [Fact]
    public async Task Once_a_server_accepted_a_send_the_timeout_no_longer_applies_and_its_failure_is_reported()
    {
        using var backplane = new InMemoryBackplane();
        var scheduler = new TestScheduler();
        await using var server = new UhuraServer(UhuraServerOptions.Default with
        {
            Backplane = backplane,
            ServerId = "s0",
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler) },
        });
        var request = Wait.First(backplane.Messages);

        var send = server.SendTo("far", "hello");
        var toClient = await request;
        Assert.Equal(BackplaneMessageKind.ToClient, toClient.Kind);
        Assert.Equal("far", toClient.ClientId);

        // Another server has the client: it accepts, so the send waits past the timeout for the outcome.
        await backplane.PublishAsync(new BackplaneMessage(BackplaneMessageKind.Accepted, "s1", "s0", "far", toClient.CorrelationId, default));
        scheduler.AdvanceBy(TimeSpan.FromSeconds(60).Ticks);
        Assert.False(send.IsCompleted);

        // Replies for another server or another send are not ours.
        await backplane.PublishAsync(new BackplaneMessage(BackplaneMessageKind.Delivered, "s1", "s2", "far", toClient.CorrelationId, default));
        await backplane.PublishAsync(new BackplaneMessage(BackplaneMessageKind.Delivered, "s1", "s0", "far", toClient.CorrelationId + 1, default));
        Assert.False(send.IsCompleted);

        await backplane.PublishAsync(new BackplaneMessage(BackplaneMessageKind.Failed, "s1", "s0", "far", toClient.CorrelationId, "ConnectionLostException\ngone"u8.ToArray()));
        var error = await Assert.ThrowsAsync<ConnectionLostException>(() => send.For());
        Assert.Equal("far", error.ConnectionId);
    }

    private sealed class FailingBackplane : IUhuraBackplane
    {
        public IObservable<BackplaneMessage> Messages => Observable.Never<BackplaneMessage>();

        public IObservable<UhuraException> Errors => Observable.Never<UhuraException>();

        public ValueTask PublishAsync(BackplaneMessage message, CancellationToken cancellationToken = default)
            => ValueTask.FromException(new InvalidOperationException("down"));
    }
}
