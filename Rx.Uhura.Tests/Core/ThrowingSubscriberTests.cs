using System.Collections.Concurrent;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// "The subscription of a subscriber that threw stays in place": also through the library's own filtered and replaying
/// streams (<c>Event(name)</c> on client, connection and server, <c>State</c>, <c>Connections</c>, <c>Session.Changes</c>).
/// Built on Rx's <c>Where</c> or <c>Observable.Create</c>, those ended the subscription at its first throw (Rx's safe and
/// auto-detaching observers), so a subscriber that threw once heard nothing more, while the node's streams kept theirs.
/// </summary>
public sealed class ThrowingSubscriberTests : IAsyncLifetime
{
    private const int Count = 40;

    private readonly UhuraServer _server = new();
    private readonly ConcurrentQueue<Connection> _accepted = new();
    private readonly List<UhuraClient> _clients = [];

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_accepted.Enqueue);
        await _server.ListenAsync("tcp://127.0.0.1:0").For();
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await _server.DisposeAsync();
    }

    private async Task<(UhuraClient Client, Connection Link)> ConnectAsync(Action<UhuraClient>? before = null)
    {
        var client = UhuraClient.Create(_server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.Native });
        _clients.Add(client);
        before?.Invoke(client);
        var link = Wait.First(_server.Connections);
        await client.StartAsync().For();
        return (client, await link);
    }

    /// <summary>A subscriber that counts every event, then throws on every other one.</summary>
    private sealed class Thrower
    {
        private readonly ConcurrentDictionary<int, TaskCompletionSource> _waits = new();
        private int _seen;

        public int Seen => Volatile.Read(ref _seen);

        /// <summary>Completes once it has seen <paramref name="count"/> notifications (fails after the wait's timeout).</summary>
        public Task WhenSeen(int count)
        {
            var wait = _waits.GetOrAdd(count, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (Seen >= count)
            {
                wait.TrySetResult();
            }

            return wait.Task.For();
        }

        public void OnNext<T>(T _)
        {
            var seen = Interlocked.Increment(ref _seen);
            if (_waits.TryGetValue(seen, out var wait))
            {
                wait.TrySetResult();
            }

            if (seen % 2 == 1)
            {
                throw new InvalidOperationException("thrower");
            }
        }
    }

    [Fact]
    public async Task A_client_Event_subscriber_that_throws_gets_every_later_event()
    {
        var thrower = new Thrower();
        var (client, link) = await ConnectAsync(c => c.Event("x").Subscribe(thrower.OnNext));
        var reports = client.Errors.OfType<SubscriberException>().Take(Count / 2).ToList().ToTask().For();
        for (var i = 0; i < Count; i++)
        {
            await link.Send("x", i).For(); // acknowledged: every subscriber of the client returned
        }

        Assert.Equal(Count, thrower.Seen);
        Assert.All(await reports, e => Assert.Equal("x", e.EventName));
    }

    [Fact]
    public async Task A_server_Event_and_a_connection_Event_subscriber_that_throw_get_every_later_event()
    {
        var onServer = new Thrower();
        var onLink = new Thrower();
        _server.Event("x").Subscribe(onServer.OnNext);
        var reports = _server.Errors.OfType<SubscriberException>().Take(Count).ToList().ToTask().For();
        var (client, link) = await ConnectAsync();
        link.Event("x").Subscribe(onLink.OnNext);
        for (var i = 0; i < Count; i++)
        {
            await client.Send("x", i).For(); // acknowledged once the server's subscribers all took it
        }

        await onServer.WhenSeen(Count); // the merged subscriber's own queue acknowledges as it takes
        Assert.Equal(Count, onLink.Seen);
        Assert.Equal(Count, (await reports).Count);
    }

    [Fact]
    public async Task A_State_Connections_or_Session_Changes_subscriber_that_throws_hears_the_next_link_and_change()
    {
        var states = new Thrower();
        var connections = new Thrower();
        var changes = new Thrower();
        var (client, _) = await ConnectAsync(c =>
        {
            c.State.Subscribe(states.OnNext);
            c.Connections.Subscribe(connections.OnNext);
            c.Session.Changes.Subscribe(changes.OnNext);
        });
        var statesBefore = states.Seen;
        Assert.Equal(1, connections.Seen); // threw on it

        var second = Wait.First(_server.Connections);
        client.Reconnect();
        await second;
        await client.WhenConnectedAsync().For();
        await connections.WhenSeen(2);
        Assert.True(states.Seen > statesBefore + 1, $"states seen {states.Seen}, {statesBefore} before the reconnect");

        var changesBefore = changes.Seen;
        client.Session.Set("a", 1);
        client.Session.Set("b", 2);
        await changes.WhenSeen(changesBefore + 2);
    }
}
