using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Reactive.Testing;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Issue #14, items 2 and 3: a subscriber that throws or blocks harms only itself. Real sockets (TCP on port 0, and a
/// temporary Unix socket where noted); time-driven behaviour in virtual time.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SubscriberIsolationTests : IAsyncLifetime
{
    private const int Count = 100;

    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-isolation-").FullName;
    private readonly List<UhuraClient> _clients = [];
    private readonly List<UhuraServer> _servers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        foreach (var server in _servers)
        {
            server.Dispose();
            await Task.CompletedTask;
        }

        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(UhuraServer Server, ReplaySubject<Connection> Accepted)> StartServer(UhuraServerOptions? options = null, bool unix = false, Action<UhuraServer>? beforeListen = null)
    {
        var server = new UhuraServer(options);
        _servers.Add(server);
        var accepted = new ReplaySubject<Connection>();
        beforeListen?.Invoke(server);
        server.Connections.Subscribe(accepted);
        await server.ListenAsync(unix ? "unix://" + Path.Combine(_dir, "s.sock") : "tcp://127.0.0.1:0");
        return (server, accepted);
    }

    private async Task<UhuraClient> Connect(UhuraServer server, WireProtocol protocol, ConnectionOptions? connection = null)
    {
        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = protocol, Connection = connection ?? new ConnectionOptions() });
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        return client;
    }

    [Theory]
    [InlineData(WireProtocol.Native, false)]
    [InlineData(WireProtocol.NodeUhura, false)]
    [InlineData(WireProtocol.Native, true)]
    public async Task A_client_event_subscriber_that_throws_leaves_the_other_subscribers_and_the_link_unharmed(WireProtocol protocol, bool unix)
    {
        var (server, accepted) = await StartServer(unix: unix);
        var client = await Connect(server, protocol);
        var link = client.Connection;
        var errors = new ReplaySubject<UhuraException>();
        client.Errors.Subscribe(errors);
        client.Event("x").Subscribe(_ => throw new InvalidOperationException("thrower"));
        var received = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Event("x").Subscribe(_ =>
        {
            if (Interlocked.Increment(ref received) == Count)
            {
                all.TrySetResult();
            }
        });

        var connection = await Wait.First(accepted);
        for (var i = 1; i <= Count; i++)
        {
            await connection.Send("x", i).For(); // acknowledged: delivered to the client's subscribers
        }

        await all.Task.For();
        Assert.Equal(Count, Volatile.Read(ref received));
        var error = Assert.IsType<SubscriberException>(await Wait.First(errors));
        Assert.Equal("x", error.EventName);
        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.Same(link, client.Connection);
        Assert.True(connection.IsConnected);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_server_connection_subscriber_that_throws_leaves_the_next_subscriber_and_the_merged_stream_every_event(WireProtocol protocol)
    {
        var merged = 0;
        var next = 0;
        var (server, accepted) = await StartServer(beforeListen: s =>
        {
            s.Events.Subscribe(_ => Interlocked.Increment(ref merged));
            s.Connections.Subscribe(c =>
            {
                c.Event("x").Subscribe(_ => throw new InvalidOperationException("thrower"));
                c.Event("x").Subscribe(_ => Interlocked.Increment(ref next));
            });
        });
        var errors = new ReplaySubject<UhuraException>();
        server.Errors.Subscribe(errors);
        var client = await Connect(server, protocol);
        var connection = await Wait.First(accepted);
        for (var i = 1; i <= Count; i++)
        {
            await client.Send("x", i).For(); // acknowledged only once every subscriber, merged ones included, took it
        }

        Assert.Equal(Count, Volatile.Read(ref next));
        Assert.Equal(Count, Volatile.Read(ref merged));
        var error = Assert.IsType<SubscriberException>(await Wait.First(errors));
        Assert.Equal(connection.Id, error.ConnectionId);
        Assert.True(connection.IsConnected);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_session_subscriber_that_throws_neither_drops_the_link_nor_stops_a_local_set(WireProtocol protocol)
    {
        var (server, accepted) = await StartServer();
        var client = await Connect(server, protocol);
        var errors = new ReplaySubject<UhuraException>();
        client.Errors.Subscribe(errors);
        client.Session.Changes.Subscribe(_ => throw new InvalidOperationException("session thrower"));
        var connection = await Wait.First(accepted);

        var fromServer = Wait.First(client.Session.Changes, c => c.Key == "a");
        connection.Session.Set("a", 1); // the peer sets a key: the client applies it and stays connected
        await fromServer;
        var atServer = Wait.First(connection.Session.Changes, c => c.Key == "b");
        client.Session.Set("b", 2); // a local set does not throw, and it is sent
        Assert.Equal(2, (int)(await atServer).Value!);

        Assert.IsType<SubscriberException>(await Wait.First(errors));
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.True(connection.IsConnected);
        var echo = Wait.First(client.Event("still"));
        await connection.Send("still").For();
        await echo;
    }

    [Fact]
    public async Task A_state_subscriber_that_throws_on_connected_leaves_the_link_up()
    {
        var (server, accepted) = await StartServer();
        var client = UhuraClient.Connect(server.Uri!);
        _clients.Add(client);
        var errors = new ReplaySubject<UhuraException>();
        client.Errors.Subscribe(errors);
        client.State.Subscribe(s =>
        {
            if (s.Status == ConnectionStatus.Connected)
            {
                throw new InvalidOperationException("state thrower");
            }
        });
        await client.WhenConnectedAsync().For();
        var connection = await Wait.First(accepted);

        var error = Assert.IsType<SubscriberException>(await Wait.First(errors));
        Assert.Equal("UhuraClient.State", error.StreamName);
        var echo = Wait.First(client.Event("hello"));
        await connection.Send("hello").For();
        await echo;
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.True(connection.IsConnected);
    }

    [Fact]
    public async Task A_server_errors_subscriber_that_throws_on_a_connection_reset_does_not_stop_disconnected_nor_the_other_subscribers()
    {
        var (server, accepted) = await StartServer();
        server.Errors.Subscribe(_ => throw new InvalidOperationException("errors thrower"));
        var errors = new ReplaySubject<UhuraException>();
        server.Errors.Subscribe(errors);

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync((System.Net.IPEndPoint)server.EndPoint!);
        var client = UhuraClient.Connect(new NetworkStream(socket, ownsSocket: false));
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        var connection = await Wait.First(accepted);
        var disconnected = Wait.First(connection.Disconnected);
        var completed = connection.Events.LastOrDefaultAsync().ToTask().For();

        socket.LingerState = new LingerOption(true, 0); // close with a reset
        socket.Close();

        var info = await disconnected;
        Assert.Equal(DisconnectReason.TransportError, info.Reason);
        await completed;
        Assert.Equal(connection.Id, (await Wait.First(errors)).ConnectionId);
    }

    [Fact]
    public async Task A_merged_subscriber_blocked_does_not_stall_another_connections_own_handler()
    {
        using var gate = new ManualResetEventSlim();
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seenByB = new ReplaySubject<UhuraEvent>();
        var (server, accepted) = await StartServer(beforeListen: s =>
        {
            s.Events.Subscribe(_ =>
            {
                blocked.TrySetResult();
                gate.Wait(Wait.Timeout);
            });
        });
        var a = await Connect(server, WireProtocol.Native);
        var connectionA = await Wait.First(accepted);
        var b = await Connect(server, WireProtocol.Native);
        var connectionB = await Wait.First(accepted.Skip(1));
        connectionB.Events.Subscribe(seenByB);

        var sendA = a.Send("slow");
        await blocked.Task.For(); // the merged subscriber is stuck on A's event
        for (var i = 0; i < 10; i++)
        {
            _ = b.Post("quick", i);
        }

        var tenth = await Wait.First(seenByB, e => e.Name == "quick" && e.Arg<int>(0) == 9);
        Assert.False(gate.IsSet);
        Assert.False(sendA.IsCompleted); // not acknowledged while a merged subscriber still holds it
        gate.Set();
        await sendA.For();
        Assert.True(connectionA.IsConnected);
        Assert.NotNull(tenth);
    }

    [Fact]
    public async Task A_send_completes_only_after_the_receiving_subscriber_returned()
    {
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (server, accepted) = await StartServer();
        var client = await Connect(server, WireProtocol.Native);
        var connection = await Wait.First(accepted);
        connection.Event("work").Subscribe(_ =>
        {
            entered.TrySetResult();
            gate.Wait(Wait.Timeout);
        });

        var send = client.Send("work");
        await entered.Task.For();

        // A round trip behind anything the server wrote before its subscriber was called: had it acknowledged "work"
        // on receipt, the client would have read that ack before this probe.
        var probe = Wait.First(client.Event("probe"));
        connection.Post("probe");
        await probe;
        Assert.False(send.IsCompleted); // the ack is written after the subscriber returns, not before
        gate.Set();
        await send.For();
    }

    [Fact]
    public async Task A_connection_subscriber_blocked_past_the_heartbeat_timeout_does_not_drop_a_live_peer()
    {
        var scheduler = new TestScheduler();
        var options = new UhuraServerOptions
        {
            Connection = new ConnectionOptions { TimeProvider = new SchedulerTimeProvider(scheduler), MaxQueuedDeliveries = 1 },
        };
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (server, accepted) = await StartServer(options, beforeListen: s => s.Connections.Subscribe(c => c.Event("block").Subscribe(_ =>
        {
            entered.TrySetResult();
            gate.Wait(Wait.Timeout);
        })));

        // The client's own clock is real; it asks for a 10 s heartbeat, so the server drops it after 20 s (virtual) of silence.
        var client = await Connect(server, WireProtocol.Native, new ConnectionOptions { HeartbeatInterval = TimeSpan.FromSeconds(10) });
        var connection = await Wait.First(accepted);
        var dropped = false;
        connection.Disconnected.Subscribe(_ => dropped = true);
        var send = client.Send("block");
        var more = client.Send("queued"); // fills the server's delivery queue: its read loop waits for the subscriber
        await entered.Task.For();

        // The subscriber runs on the pump while the read loop finishes its batch: the clock moves only once the read loop
        // waits for delivery (moved before, 45 virtual seconds pass in a microsecond while the loop was still reading,
        // and the timeout is right to fire: a CI run under load saw that).
        Assert.True(SpinWait.SpinUntil(() => connection.IsDeliveryBackpressured, Wait.Timeout), "the server's read loop waits for delivery");

        for (var second = 0; second < 45; second++)
        {
            scheduler.AdvanceBy(TimeSpan.FromSeconds(1).Ticks);
        }

        Assert.False(dropped);
        Assert.True(connection.IsConnected);
        gate.Set();
        await send.For();
        await more.For();
        Assert.True(connection.IsConnected);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_blocked_session_subscriber_stops_neither_the_links_reading_nor_its_events_nor_other_session_subscribers(WireProtocol protocol)
    {
        // Session subscribers used to run on the read loop, under the session's gate: one that blocked stopped the
        // link's reading (its events, acks and heartbeats: past the heartbeat timeout, the link itself) and every other
        // session subscriber.
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seenByBlocked = new ReplaySubject<string>();
        var (server, accepted) = await StartServer(beforeListen: s => s.Connections.Subscribe(c => c.Session.Changes.Subscribe(change =>
        {
            seenByBlocked.OnNext(change.Key);
            if (change.Key == "block")
            {
                entered.TrySetResult();
                gate.Wait(Wait.Timeout);
            }
        })));
        var client = await Connect(server, protocol);
        var connection = await Wait.First(accepted);
        var after = Wait.First(connection.Event("after").Take(100).Count());

        client.Session.Set("block", 1);
        await entered.Task.For();
        var next = Wait.First(connection.Session.Changes, change => change.Key == "next");
        client.Session.Set("next", 2);
        for (var i = 0; i < 99; i++)
        {
            client.Post("after", i);
        }

        await client.Send("after", 99).WaitAsync(TimeSpan.FromSeconds(5)); // delivered and acknowledged meanwhile
        Assert.Equal(100, await after);
        Assert.Equal(2, connection.Session.Get<int>("next")); // applied at once
        Assert.Equal(2, (int)(await next).Value!); // and another subscriber told of it while the first one blocks
        Assert.True(connection.IsConnected);
        gate.Set();
        await Wait.First(seenByBlocked, key => key == "next"); // the blocked one hears of it afterwards, in order
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_full_merged_queue_under_drop_newest_drops_for_that_subscriber_only_and_acks_stay_in_order(WireProtocol protocol)
    {
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new List<int>();
        var own = new ReplaySubject<UhuraEvent>();
        var options = new UhuraServerOptions { EventsQueueCapacity = 2, EventsOverflowPolicy = SubscriberOverflowPolicy.DropNewest };
        var (server, accepted) = await StartServer(options, beforeListen: s => s.Events.Subscribe(e =>
        {
            slow.Add(e.Arg<int>(0));
            entered.TrySetResult();
            gate.Wait(Wait.Timeout);
        }));
        var drops = new ReplaySubject<UhuraException>();
        server.Errors.Subscribe(drops);
        var client = await Connect(server, protocol);
        var connection = await Wait.First(accepted);
        connection.Events.Subscribe(own);

        var sends = new List<Task> { client.Send("n", 1) };
        await entered.Task.For(); // event 1 is being delivered; the subscriber's queue is empty
        for (var i = 2; i <= 10; i++)
        {
            sends.Add(client.Send("n", i));
        }

        var dropped = await drops.OfType<SubscriberOverflowException>().Take(7).ToList().ToTask().For(); // 2 and 3 queued, 4 to 10 dropped
        Assert.All(dropped, d => Assert.Equal(SubscriberOverflowPolicy.DropNewest, d.Policy));
        await Wait.First(own, e => e.Arg<int>(0) == 10); // the connection's own subscriber got them all
        var probe = Wait.First(client.Event("probe"));
        connection.Post("probe"); // behind any ack the server wrote so far
        await probe;
        Assert.DoesNotContain(sends, t => t.IsCompleted); // none acknowledged before event 1 (and 2, 3) reached the slow subscriber

        gate.Set();
        await Task.WhenAll(sends).For();
        Assert.Equal([1, 2, 3], slow);
    }

    [Fact]
    public async Task A_full_merged_queue_under_fail_ends_that_subscription_with_an_error_after_what_it_had_queued()
    {
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new List<int>();
        var failed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var fast = new ReplaySubject<UhuraEvent>();
        var options = new UhuraServerOptions { EventsQueueCapacity = 1, EventsOverflowPolicy = SubscriberOverflowPolicy.Fail };
        var (server, _) = await StartServer(options, beforeListen: s =>
        {
            s.Events.Subscribe(
                e =>
                {
                    slow.Add(e.Arg<int>(0));
                    entered.TrySetResult();
                    gate.Wait(Wait.Timeout);
                },
                ex => failed.TrySetResult(ex));
            s.Events.Subscribe(fast);
        });
        var errors = new ReplaySubject<UhuraException>();
        server.Errors.Subscribe(errors);
        var client = await Connect(server, WireProtocol.Native);

        var first = client.Send("n", 1);
        await entered.Task.For();
        await Wait.First(fast, e => e.Arg<int>(0) == 1); // each queue holds one: send the next only when the fast one took this
        var second = client.Send("n", 2); // fills the slow subscriber's queue
        await Wait.First(fast, e => e.Arg<int>(0) == 2); // the other subscriber's queue (also of 1) is empty again
        var third = client.Send("n", 3); // does not fit the slow one's
        await Wait.First(fast, e => e.Arg<int>(0) == 3);
        Assert.IsType<SubscriberOverflowException>(await Wait.First(errors));

        gate.Set();
        Assert.IsType<SubscriberOverflowException>(await failed.Task.For());
        Assert.Equal([1, 2], slow);
        await Task.WhenAll(first, second, third).For();
    }

    [Fact]
    public async Task A_mesh_event_subscriber_that_throws_leaves_the_other_subscribers_every_event()
    {
        await using var kit = new Rx.Uhura.Tests.Mesh.MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        await Rx.Uhura.Tests.Mesh.EventBusTests.ConnectAsync([a, b], [(b, a.Info!)], [(b, a)]);
        b.Events.Subscribe(_ => throw new InvalidOperationException("mesh thrower"));
        var received = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.Events.Subscribe(_ =>
        {
            if (Interlocked.Increment(ref received) == Count)
            {
                all.TrySetResult();
            }
        });

        for (var i = 0; i < Count; i++)
        {
            a.Emit("tick", i);
        }

        await all.Task.For();
        Assert.Equal(Count, Volatile.Read(ref received));
    }

    [Fact]
    public async Task A_client_that_resumes_while_its_subscriber_is_blocked_does_not_claim_the_events_still_waiting_for_it()
    {
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (server, accepted) = await StartServer();
        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions
        {
            Protocol = WireProtocol.Native,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        });
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        var got = new List<int>();
        client.Event("n").Subscribe(e =>
        {
            got.Add(e.Arg<int>(0));
            entered.TrySetResult();
            gate.Wait(Wait.Timeout);
        });
        var first = await Wait.First(accepted);
        var sends = new[] { first.Send("n", 1), first.Send("n", 2), first.Send("n", 3) };
        await entered.Task.For(); // 1 is with the subscriber; 2 and 3 may be read and queued, or not yet

        first.Dispose();
        var second = await Wait.First(accepted.Skip(1));
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Connected && s.Resumed);
        Assert.DoesNotContain(sends, t => t.IsCompleted); // the server took the resume point from Hello: nothing claimed before delivery

        gate.Set();
        await Task.WhenAll(sends).For();
        Assert.Equal([1, 2, 3], got);
    }

    [Fact]
    public async Task The_error_streams_complete_when_their_owner_closes_and_a_late_subscriber_gets_the_completion()
    {
        var (server, _) = await StartServer();
        var client = await Connect(server, WireProtocol.Native);
        var clientErrors = client.Errors.LastOrDefaultAsync().ToTask().For();
        var serverErrors = server.Errors.LastOrDefaultAsync().ToTask().For();
        var clientEvents = client.Events.LastOrDefaultAsync().ToTask().For();

        await client.Disconnect().For();
        await server.CloseAsync().For();

        await clientErrors;
        await serverErrors;
        await clientEvents;
        await client.Errors.LastOrDefaultAsync().ToTask().For();
        await server.Events.LastOrDefaultAsync().ToTask().For();
    }
}
