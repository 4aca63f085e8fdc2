using System.Net;
using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Core;

/// <summary>Node uhura's reconnect suite, ported, and what reconnection promises beyond it. Real sockets, short delays.</summary>
public abstract class ReconnectTests : IAsyncLifetime
{
    /// <summary>The wire the clients of this run speak (the server accepts both).</summary>
    protected abstract WireProtocol Protocol { get; }

    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };

    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();
    private readonly List<UhuraClient> _clients = [];

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await _server.CloseAsync().For();
    }

    private UhuraClient Client(UhuraClientOptions? options = null)
    {
        var client = UhuraClient.Connect(_server.Uri!, (options ?? new UhuraClientOptions()) with { Reconnect = Fast, Protocol = Protocol });
        _clients.Add(client);
        return client;
    }

    private Task<Connection> Nth(int n) => Wait.First(_connections.Skip(n));

    /// <summary>An endpoint nobody listens on: a port the OS just handed out and took back.</summary>
    private static string UnusedEndpoint()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return $"tcp://127.0.0.1:{port}";
    }

    [Fact]
    public async Task The_client_reconnects_when_auto_reconnect_is_on()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        (await Nth(0)).Dispose();
        var second = await Nth(1);
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Connected && s.Resumed);
        Assert.True(second.Resumed);
    }

    [Fact]
    public async Task Events_keep_flowing_after_reconnection_to_subscriptions_made_once()
    {
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e =>
        {
            c.Send("pong", e.Args[0]);
        }));
        var client = Client();
        var pongs = new List<int>();
        using var subscription = client.Event("pong").Subscribe(e => { lock (pongs) { pongs.Add(e.Arg<int>(0)); } });
        for (var i = 0; i < 5; i++)
        {
            var pong = Wait.First(client.Event("pong"), e => e.Arg<int>(0) == i);
            await client.Send("ping", i).For();
            await pong;
            (await Nth(i)).Dispose(); // drop the link after every round trip
            await Nth(i + 1);
        }

        lock (pongs)
        {
            Assert.Equal([0, 1, 2, 3, 4], pongs); // each once: no duplicate subscriptions
        }
    }

    [Fact]
    public async Task No_message_is_lost_or_duplicated_while_the_link_keeps_dropping()
    {
        var received = new List<int>();
        var all = new TaskCompletionSource();
        _server.Connections.Subscribe(c => c.Event("n").Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Arg<int>(0));
                if (received.Count == 2000)
                {
                    all.TrySetResult();
                }
            }
        }));

        var client = Client();
        var sends = new List<Task>();
        for (var i = 0; i < 2000; i++)
        {
            sends.Add(client.Send("n", i));
            if (i % 400 == 200)
            {
                client.Connection?.Dispose(); // the link dies with sends in flight
            }
        }

        try
        {
            await Task.WhenAll(sends).For();
            await all.Task.For();
        }
        catch (TimeoutException)
        {
            lock (received)
            {
                var missing = Enumerable.Range(0, 2000).Except(received).Take(20);
                var pending = sends.Select((t, i) => (t, i)).Where(x => !x.t.IsCompleted).Select(x => x.i).Take(20);
                Assert.Fail($"received {received.Count}, missing [{string.Join(",", missing)}], pending sends [{string.Join(",", pending)}], state {client.CurrentState}, link {client.Connection}");
            }
        }

        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, 2000), received);
        }
    }

    [Fact]
    public async Task The_session_is_kept_across_reconnects()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var id = client.Session.Id;
        client.Session.Set("k", "v");
        var first = await Nth(0);
        await Wait.First(first.Session, s => s.ContainsKey("k"));
        first.Session.Set("s", 1);
        await Wait.First(client.Session, s => s.ContainsKey("s"));
        first.Dispose();

        var second = await Nth(1);
        await second.WhenReady.For();
        Assert.Equal(id, second.Session.Id);
        Assert.Equal("v", second.Session.Get<string>("k"));
        Assert.Equal(id, client.Session.Id);
        Assert.Equal(1, client.Session.Get<int>("s"));
    }

    [Fact]
    public async Task The_state_goes_disconnected_reconnecting_connecting_connected_resumed()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var states = client.State.Skip(1).TakeWhile(s => !(s.Status == ConnectionStatus.Connected)).ToList().ToTask();
        (await Nth(0)).Dispose();
        var sequence = await states.For();
        Assert.Equal([ConnectionStatus.Disconnected, ConnectionStatus.Reconnecting, ConnectionStatus.Connecting], sequence.Select(s => s.Status));
        Assert.Equal(DisconnectReason.RemoteClose, sequence[0].Disconnect!.Reason);
        Assert.Equal(1, sequence[1].Attempt);
        Assert.InRange(sequence[1].Delay, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
        Assert.True(client.CurrentState.Resumed);
    }

    [Fact]
    public async Task The_first_connect_waits_for_a_server_that_is_not_up_yet()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();

        var client = UhuraClient.Connect($"tcp://127.0.0.1:{port}", new UhuraClientOptions { Reconnect = Fast, Protocol = Protocol });
        _clients.Add(client);
        var sent = client.Send("early", 1);
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Reconnecting && s.Attempt >= 2);

        await using var late = new UhuraServer();
        var got = new TaskCompletionSource<UhuraEvent>();
        late.Connections.Subscribe(c => c.Event("early").Subscribe(got.SetResult));
        await late.ListenAsync($"tcp://127.0.0.1:{port}");
        await sent.For();
        Assert.Equal(1, (await got.Task.For()).Arg<int>(0));
    }

    [Fact]
    public async Task Reconnect_forces_a_new_socket_now_and_resumes_the_session()
    {
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = Protocol }); // no auto-reconnect needed
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        var id = client.Session.Id;
        var first = await Nth(0);
        client.Reconnect();
        var second = await Nth(1);
        await Wait.First(first.Disconnected);
        await second.WhenReady.For();
        Assert.True(second.Resumed);
        Assert.Equal(id, client.Session.Id);
        var ping = Wait.First(second.Event("ping"));
        await client.Send("ping").For();
        await ping;
    }

    [Fact]
    public async Task Reconnect_during_a_long_backoff_wait_connects_at_once_and_resends_what_was_queued()
    {
        var client = Client(new UhuraClientOptions { Reconnect = Fast with { FirstDelay = TimeSpan.FromSeconds(60), MaxDelay = TimeSpan.FromSeconds(60), UseJitter = false } });
        await client.WhenConnectedAsync().For();
        var waiting = Wait.First(client.State, s => s.Status == ConnectionStatus.Reconnecting);
        (await Nth(0)).Dispose();
        await waiting; // a 60 s wait has begun
        var queued = client.Send("queued");
        client.Reconnect();
        var second = await Nth(1); // within Wait's 10 s: the wait was cut short
        await queued.For();
        Assert.True(second.Resumed);
    }

    [Fact]
    public async Task Disconnect_during_a_backoff_wait_stops_reconnecting_and_fails_what_was_queued()
    {
        var client = Client(new UhuraClientOptions { Reconnect = Fast with { FirstDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30), UseJitter = false } });
        await client.WhenConnectedAsync().For();
        var reconnecting = Wait.First(client.State, s => s.Status == ConnectionStatus.Reconnecting);
        await _server.CloseAsync().For();
        await reconnecting;
        var queued = client.Send("never");
        await client.Disconnect().For();
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
        await Assert.ThrowsAsync<ConnectionLostException>(() => queued.For());
    }

    [Fact]
    public async Task An_attempt_limit_closes_the_client_with_a_reconnect_failed_error()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var client = UhuraClient.Connect($"tcp://127.0.0.1:{port}", new UhuraClientOptions { Reconnect = Fast with { MaxAttempts = 3 }, Protocol = Protocol });
        _clients.Add(client);
        var closed = await Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        var error = Assert.IsType<ReconnectFailedException>(closed.Error);
        Assert.Equal(4, error.Attempts);
        await Assert.ThrowsAsync<ReconnectFailedException>(() => client.WhenConnectedAsync());
    }

    [Fact]
    public async Task A_full_queue_rejects_new_sends_by_default()
    {
        var client = UhuraClient.Connect(UnusedEndpoint(), new UhuraClientOptions
        {
            Reconnect = Fast with { FirstDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) },
            Connection = ConnectionOptions.Default with { MaxQueuedMessages = 2 },
        });
        _clients.Add(client);
        var a = client.Send("a");
        var b = client.Send("b");
        await Assert.ThrowsAsync<OutboundBufferFullException>(() => client.Send("c"));
        Assert.False(a.IsCompleted);
        Assert.False(b.IsCompleted);
    }

    [Fact]
    public async Task A_full_queue_can_drop_the_oldest_send_with_a_visible_signal()
    {
        var client = UhuraClient.Connect(UnusedEndpoint(), new UhuraClientOptions
        {
            Reconnect = Fast with { FirstDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) },
            Connection = ConnectionOptions.Default with { MaxQueuedMessages = 2 },
            QueueFullPolicy = QueueFullPolicy.DropOldest,
        });
        _clients.Add(client);
        var dropped = Wait.First(client.Dropped);
        var a = client.Send("a");
        var b = client.Send("b");
        var c = client.Send("c");
        Assert.Equal("a", (await dropped).EventName);
        await Assert.ThrowsAsync<OutboundBufferFullException>(() => a.For());
        Assert.False(b.IsCompleted);
        Assert.False(c.IsCompleted);
    }

    [Theory]
    [InlineData(QueueFullPolicy.Reject)]
    [InlineData(QueueFullPolicy.DropOldest)]
    public async Task The_queue_of_sends_waiting_for_a_link_is_bounded_in_bytes_too(QueueFullPolicy policy)
    {
        var client = UhuraClient.Connect(UnusedEndpoint(), new UhuraClientOptions
        {
            Reconnect = Fast with { FirstDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) },
            Connection = ConnectionOptions.Default with { MaxQueuedBytes = 4096 },
            QueueFullPolicy = policy,
        });
        _clients.Add(client);
        var dropped = Wait.First(client.Dropped);
        var blob = new string('x', 1500); // two fit in 4 KiB, three do not
        var a = client.Send("a", blob);
        var b = client.Send("b", blob);
        var c = client.Send("c", blob);
        if (policy == QueueFullPolicy.Reject)
        {
            await Assert.ThrowsAsync<OutboundBufferFullException>(() => c.For());
            Assert.False(a.IsCompleted);
        }
        else
        {
            Assert.Equal("a", (await dropped).EventName);
            await Assert.ThrowsAsync<OutboundBufferFullException>(() => a.For());
            Assert.False(c.IsCompleted);
        }

        Assert.False(b.IsCompleted);
        Assert.True(client.Post("small")); // a small one still fits under Reject, and takes no one's place under DropOldest
    }

    [Fact]
    public async Task A_message_id_seen_before_is_acknowledged_but_not_delivered_again()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.HandshakeAsync();
        var connection = await Nth(0);
        var seen = new List<string>();
        connection.Events.Subscribe(e => { lock (seen) { seen.Add(e.Name + e.Args[0]); } });
        await peer.WriteAsync("\n,\n{\"args\":[\"x\",1],\"id\":\"rxAAAAAAAAAA:1\"}");
        await peer.WriteAsync("\n,\n{\"args\":[\"x\",1],\"id\":\"rxAAAAAAAAAA:1\"}"); // a resend
        await peer.WriteAsync("\n,\n{\"args\":[\"y\",1],\"id\":\"0b1e6c1a-uuid-from-node\"}");
        await peer.WriteAsync("\n,\n{\"args\":[\"y\",1],\"id\":\"0b1e6c1a-uuid-from-node\"}"); // Node resends with the same uuid
        await peer.WriteAsync("\n,\n{\"args\":[\"z\",2],\"id\":\"rxAAAAAAAAAA:2\"}");
        await peer.ReadUntilAsync("ack::rxAAAAAAAAAA:2");
        var acks = peer.Elements().OfType<JObject>().Count(e => e["args"]?[0]?.ToString().StartsWith("ack::", StringComparison.Ordinal) == true);
        Assert.Equal(5, acks);
        lock (seen)
        {
            Assert.Equal(["x1", "y1", "z2"], seen);
        }
    }

    [Fact]
    public async Task A_link_that_dies_during_the_handshake_is_a_failed_attempt_and_is_retried()
    {
        var dropFirst = 1;
        _server.Connections.Subscribe(c =>
        {
            if (Interlocked.Exchange(ref dropFirst, 0) == 1)
            {
                c.Dispose(); // before 'connect' goes out
            }
        });
        var client = Client();
        await client.WhenConnectedAsync().For();
        await Nth(1);
        await client.Send("ok").For();
    }

    [Fact]
    public async Task A_resuming_connection_supersedes_a_half_dead_one()
    {
        // The client's link goes half-dead: nothing it writes reaches the server any more, nothing comes back, and its
        // socket stays open, so the server still holds the link. The client's next link (forced here) resumes the session
        // and supersedes it. (A second client object presenting the session is not the same: on the native wire it waits
        // for the live link to go, SessionInUseTests.)
        await using var transport = new FreezableTransport(Rx.Uhura.Transport.SocketTransport.Instance);
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = Protocol, Reconnect = Fast, Transport = transport });
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        var old = await Nth(0);
        transport.Freeze();
        client.Reconnect();
        var next = await Nth(1);
        Assert.Equal(DisconnectReason.LocalClose, (await Wait.First(old.Disconnected)).Reason);
        Assert.Equal(old.Session.Id, next.Session.Id);
        Assert.True(next.Resumed);
    }

    [Fact]
    public async Task A_client_resuming_right_after_the_first_handshake_finds_its_session_even_when_the_store_saves_slowly()
    {
        // What made A_resuming_connection_supersedes_a_half_dead_one flaky: the id left before the session was saved.
        await using var server = new UhuraServer(new UhuraServerOptions { SessionStore = new SlowSessionStore() });
        var connections = new ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        await server.ListenAsync("tcp://127.0.0.1:0");
        var first = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { Protocol = Protocol }).For();
        var old = await Wait.First(connections);
        var saved = first.Session.Get();
        await first.DisposeAsync(); // the session's saves after the Welcome and at the end are still under way (300 ms each)
        await Wait.First(old.Disconnected);
        await using var second = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { InitialSession = saved, Protocol = Protocol }).For();
        Assert.Equal(saved[UhuraSession.IdKey], second.Session.Get(UhuraSession.IdKey));
        Assert.True(second.Connection!.Resumed);
    }

    /// <summary>An in-memory store whose saves take a while (a remote database's round trip), reads immediate.</summary>
    private sealed class SlowSessionStore : ISessionStore
    {
        private readonly InMemorySessionStore _inner = new();

        public ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
            => _inner.GetAsync(sessionId, cancellationToken);

        public async ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(300), cancellationToken); // the store's latency, not a wait for anything
            await _inner.SetAsync(sessionId, session, cancellationToken);
        }

        public ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
            => _inner.DestroyAsync(sessionId, cancellationToken);
    }
}

public sealed class ReconnectTestsOverTheNativeProtocol : ReconnectTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class ReconnectTestsOverTheNodeUhuraWire : ReconnectTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}

public sealed class SessionExpiryTests
{
    private readonly TestScheduler _scheduler = new();
    private readonly ReplaySubject<Connection> _connections = new();

    /// <summary>A server on the virtual clock whose sessions live 5 minutes after their client left.</summary>
    private async Task<UhuraServer> StartAsync(ISessionStore? store = null, TimeSpan? timeToLive = null)
    {
        var server = new UhuraServer(new UhuraServerOptions
        {
            SessionStore = store,
            SessionTimeToLive = timeToLive ?? TimeSpan.FromMinutes(5),
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(_scheduler) },
        });
        server.Connections.Subscribe(_connections);
        await server.ListenAsync("tcp://127.0.0.1:0");
        return server;
    }

    /// <summary>A client connects, then leaves; returns its session (to present again) and the server's side of its link.</summary>
    private async Task<(IReadOnlyDictionary<string, JToken> Saved, string Id, Connection Connection)> ConnectAndLeaveAsync(UhuraServer server)
    {
        var client = await UhuraClient.ConnectAsync(server.Uri!).For();
        var saved = client.Session.Get();
        var id = client.Session.Id!;
        var connection = await Wait.First(_connections);
        await connection.Session.FlushAsync().For();
        client.Dispose();
        await Wait.First(connection.Disconnected);
        return (saved, id, connection);
    }

    [Fact]
    public async Task A_disconnected_session_expires_after_its_time_to_live_on_the_virtual_clock()
    {
        await using var server = await StartAsync();
        var (saved, id, _) = await ConnectAndLeaveAsync(server);
        var scheduler = _scheduler;
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(5)).Where(_ => server.Sessions.Count == 1 && server.ActiveConnections.Count == 0));

        scheduler.AdvanceBy(TimeSpan.FromMinutes(4).Ticks);
        Assert.NotNull(await server.SessionStore.GetAsync(id)); // still resumable
        scheduler.AdvanceBy(TimeSpan.FromMinutes(1).Ticks);
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(5)).SelectMany(_ => server.SessionStore.GetAsync(id).AsTask()).Where(s => s is null));

        await using var late = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { InitialSession = saved }).For();
        Assert.False(late.CurrentState.Resumed);
        Assert.NotEqual(id, late.Session.Id);
    }

    [Fact]
    public async Task A_time_to_live_longer_than_a_timer_takes_is_waited_in_full()
    {
        // A .NET timer waits at most about 49.7 days: a year-long time to live used to throw from the detach.
        await using var server = await StartAsync(timeToLive: TimeSpan.FromDays(400));
        var (_, id, _) = await ConnectAndLeaveAsync(server);
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(5)).Where(_ => server.Sessions.Count == 1 && server.ActiveConnections.Count == 0));

        _scheduler.AdvanceBy(TimeSpan.FromDays(399).Ticks);
        Assert.Equal(1, server.Sessions.Count); // eight timer steps later, still kept
        Assert.NotNull(await server.SessionStore.GetAsync(id));
        _scheduler.AdvanceBy(TimeSpan.FromDays(1).Ticks);
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(5)).SelectMany(_ => server.SessionStore.GetAsync(id).AsTask()).Where(s => s is null));
        Assert.Equal(0, server.Sessions.Count);
    }

    [Fact]
    public async Task A_store_that_expires_sessions_itself_keeps_a_session_the_server_forgot()
    {
        var scheduler = _scheduler;
        var store = new InMemorySessionStore(TimeSpan.FromDays(1), new SchedulerTimeProvider(scheduler)); // shared with other servers, say
        await using var server = await StartAsync(store);
        var (saved, id, _) = await ConnectAndLeaveAsync(server);
        await server.Sessions.WhenSavedAsync(id).For();

        scheduler.AdvanceBy(TimeSpan.FromMinutes(5).Ticks);
        Assert.Equal(0, server.Sessions.Count); // the server forgot it...
        Assert.NotNull(await store.GetAsync(id)); // ...the store did not

        var late = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { InitialSession = saved }).For();
        Assert.True(late.CurrentState.Resumed);
        Assert.Equal(id, late.Session.Id);
        var lateConnection = await Wait.First(_connections.Skip(1));
        late.Dispose();
        await Wait.First(lateConnection.Disconnected);
        await server.Sessions.WhenSavedAsync(id).For(); // saved as its link ended: the store's time to live starts now

        scheduler.AdvanceBy(TimeSpan.FromDays(1).Ticks - 1);
        Assert.NotNull(await store.GetAsync(id));
        scheduler.AdvanceBy(1);
        Assert.Null(await store.GetAsync(id));
    }
}
