using System.Reactive.Linq;
using System.Reactive.Subjects;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The public API called from inside the library's own callbacks, as an application may: closing, disposing,
/// reconnecting, sending and waiting, changing the session — from an event, state, session, error or connection
/// subscriber. Each must neither deadlock nor lose or duplicate an event, and the library keeps serving everybody else.
/// </summary>
public sealed class HostileCallbackTests : IAsyncLifetime
{
    private const int Count = 50;
    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        _server.Connections.Subscribe(c => c.Event("echo").Subscribe(e => c.Post("echoed", e.Args[0])));
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    private UhuraClient Client(WireProtocol protocol) => UhuraClient.Create(_server.Uri!, new UhuraClientOptions
    {
        Protocol = protocol,
        Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20) },
    });

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_client_disposed_from_its_own_event_subscriber_ends_its_streams_and_the_server_serves_on(WireProtocol protocol)
    {
        var client = Client(protocol);
        var completed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Events.Subscribe(_ => { }, _ => completed.TrySetResult(), completed.SetResult);
        client.Event("echoed").Subscribe(e =>
        {
            if (e.Arg<int>(0) == 3)
            {
                client.Dispose();
            }
        });
        await client.StartAsync().For();
        for (var i = 0; i < 10; i++)
        {
            client.Post("echo", i);
        }

        await completed.Task.For();

        await using var other = Client(protocol);
        var echoed = Wait.First(other.Event("echoed"));
        await other.StartAsync().For();
        await other.Send("echo", 7).For();
        Assert.Equal(7, (await echoed).Arg<int>(0));
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_subscriber_that_sends_and_blocks_until_acknowledged_gets_every_acknowledgement(WireProtocol protocol)
    {
        await using var client = Client(protocol);
        var replies = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Event("echoed").Subscribe(e =>
        {
            var n = e.Arg<int>(0);
            if (n < Count)
            {
                // Sync over async inside a handler: the acknowledgement is read by the link, not by this dispatcher.
                Assert.True(client.Send("echo", n + Count).Wait(TimeSpan.FromSeconds(10)), $"the Send of {n + Count} was never acknowledged");
            }

            lock (replies)
            {
                replies.Add(n);
                if (replies.Count == 2 * Count)
                {
                    all.TrySetResult();
                }
            }
        });
        await client.StartAsync().For();
        for (var i = 0; i < Count; i++)
        {
            client.Post("echo", i);
        }

        await all.Task.For();
        Assert.Equal(Enumerable.Range(0, 2 * Count), replies.Order());
        Assert.Equal(Enumerable.Range(0, Count), replies.Where(n => n < Count));
    }

    [Fact]
    public async Task A_server_connection_closed_from_its_own_event_subscriber_delivers_what_came_before_and_completes()
    {
        var seen = new List<int>();
        var completed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var closes = new List<Task>();
        using var subscription = _server.Connections.Subscribe(c =>
        {
            c.Events.Subscribe(_ => { }, _ => completed.TrySetResult(), completed.SetResult);
            c.Event("n").Subscribe(e =>
            {
                lock (seen)
                {
                    seen.Add(e.Arg<int>(0));
                }

                if (e.Arg<int>(0) == 5)
                {
                    lock (closes)
                    {
                        closes.Add(c.CloseAsync());
                    }
                }
            });
        });
        await using var client = UhuraClient.Create(_server.Uri!);
        await client.StartAsync().For();
        for (var i = 0; i <= 5; i++)
        {
            await client.Send("n", i).For();
        }

        await completed.Task.For();
        Task[] pending;
        lock (closes)
        {
            pending = [.. closes];
        }

        await Task.WhenAll(pending).For();
        Assert.Equal(Enumerable.Range(0, 6), seen);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_client_that_keeps_posting_while_the_server_closes_its_links_from_a_subscriber_has_no_post_refused_and_nothing_lost(WireProtocol protocol)
    {
        // Found by the deterministic simulation: between the server's Close and the link's end, the client's link took
        // new sends and failed them (SendAfterCloseException) instead of leaving them to the next link.
        const int total = 30_000;
        var seen = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = _server.Connections.Subscribe(c => c.Event("n").Subscribe(e =>
        {
            var n = e.Arg<int>(0);
            lock (seen)
            {
                seen.Add(n);
                if (seen.Count == total)
                {
                    all.TrySetResult();
                }
            }

            if (n % 3_000 == 1_500)
            {
                _ = c.CloseAsync(); // every so often, from inside the subscriber
            }
        }));
        await using var client = Client(protocol);
        var dropped = new List<string>();
        client.Dropped.Subscribe(d => { lock (dropped) { dropped.Add(d.Message); } });
        await client.StartAsync().For();
        for (var i = 0; i < total; i++)
        {
            if (i % 1_000 == 999)
            {
                await client.Send("n", i).For(); // flow control: far fewer in flight than the queue's bound
            }
            else
            {
                Assert.True(client.Post("n", i), $"Post({i}) was refused: {string.Join("; ", dropped)}");
            }
        }

        await client.Send("n", total).For(); // acknowledged: everything before it was delivered
        await all.Task.For();
        lock (seen)
        {
            Assert.Equal(Enumerable.Range(0, total + 1), seen);
        }

        Assert.Empty(dropped);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_session_subscriber_that_sets_a_key_in_reply_converges_both_sides(WireProtocol protocol)
    {
        await using var client = Client(protocol);
        client.Session.Changes.Subscribe(change =>
        {
            if (change.Key == "ping")
            {
                client.Session.Set("pong", change.Value!.ToObject<int>());
            }
        });
        await client.StartAsync().For();
        var connection = await Wait.First(_connections);
        var pong = Wait.First(connection.Session.Changes.Where(c => c.Key == "pong" && c.Value!.ToObject<int>() == 3));
        connection.Session.Set("ping", 3);
        await pong;
        Assert.Equal(3, client.Session.Get<int>("pong"));
        Assert.Equal(3, connection.Session.Get<int>("pong"));
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_state_subscriber_that_reconnects_on_the_first_connects_still_gets_every_event_once(WireProtocol protocol)
    {
        using var sends = _server.Connections.Take(1).Subscribe(c =>
        {
            for (var i = 0; i < Count; i++)
            {
                c.Post("s", i);
            }
        });
        await using var client = Client(protocol);
        var connects = 0;
        var fourth = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.State.Where(s => s.Status == ConnectionStatus.Connected).Subscribe(_ =>
        {
            var n = Interlocked.Increment(ref connects);
            if (n <= 3)
            {
                client.Reconnect();
            }
            else
            {
                fourth.TrySetResult();
            }
        });
        var received = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var end = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Event("s").Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Arg<int>(0));
                if (received.Count == Count)
                {
                    all.TrySetResult();
                }
            }
        });
        client.Event("echoed").Subscribe(_ => end.TrySetResult());
        await client.StartAsync().For();
        await fourth.Task.For();
        await client.Send("echo", 0).For();
        await end.Task.For();
        if (protocol == WireProtocol.Native)
        {
            // The server's sends follow the session across the links the subscriber dropped.
            await all.Task.For();
            lock (received)
            {
                Assert.Equal(Enumerable.Range(0, Count), received);
            }
        }
        else
        {
            lock (received)
            {
                Assert.Equal(received.Distinct(), received); // at most once per event on a wire without resume
                Assert.Equal(received.Order(), received);
            }
        }
    }

    [Fact]
    public async Task A_server_disposed_from_its_own_connections_subscriber_closes_and_its_client_sees_the_end()
    {
        var server = new UhuraServer();
        server.Connections.Subscribe(_ => server.Dispose());
        await server.ListenAsync("tcp://127.0.0.1:0");
        var client = UhuraClient.Create(server.Uri!);
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.State.Where(s => s.Status != ConnectionStatus.Connected && s.Status != ConnectionStatus.Connecting).Subscribe(_ => ended.TrySetResult());
        _ = client.StartAsync();
        await ended.Task.For();
        await server.CloseAsync().For(); // already closed: completes
        await client.DisposeAsync();
    }
}
