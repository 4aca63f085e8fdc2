using System.Collections.Concurrent;
using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Two client objects that present one session (both restored from the same saved session, say) on the native wire:
/// the one whose link is live keeps it, the other is refused with <see cref="SessionInUseException"/> and retries with
/// its backoff, and gets the session once the first is gone. Before, each took the session from the other on every
/// reconnect, without end, and every take reset the session's streams. A refused client makes the server probe the
/// live link: one whose peer vanished without closing its socket is dropped after the probe timeout, not after the
/// heartbeat timeout (and one whose peer answers is kept: <see cref="Time.SessionProbeTests"/>, on a virtual clock). Real
/// sockets.
/// </summary>
public sealed class SessionInUseTests : IAsyncLifetime
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(20) };

    private readonly UhuraServer _server = new();
    private readonly ConcurrentQueue<Connection> _accepted = new();
    private readonly List<UhuraClient> _clients = [];

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_accepted.Enqueue);
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

    [Fact]
    public async Task A_client_restored_from_a_live_session_is_refused_and_the_owner_keeps_its_link_and_its_keys()
    {
        var owner = Client(null);
        await owner.WhenConnectedAsync().For();
        owner.Session.Set("owner", "A");
        var saved = owner.Session.Get();
        await Until(() => _server.SessionStore.GetAsync((string)saved[UhuraSession.IdKey]!).Result?.ContainsKey("owner") == true); // saved by the server
        var sessionId = (string)saved[UhuraSession.IdKey]!;
        var received = new ConcurrentQueue<int>();
        _server.Event("n").Subscribe(e => received.Enqueue(e.Arg<int>(0)));

        var intruder = Client(new Dictionary<string, JToken>(saved) { ["intruder"] = true });
        var refusals = intruder.State.Where(s => s.Error is SessionInUseException).Replay();
        using var connect = refusals.Connect();
        var sends = new List<Task>();
        for (var i = 0; i < 5; i++)
        {
            sends.Add(owner.Send("n", i));
            await Wait.First(refusals.Skip(i)); // the intruder is turned away again and again meanwhile
        }

        await Task.WhenAll(sends).For();
        Assert.Single(_accepted); // the owner's first link, never taken from it
        Assert.True(owner.CurrentState.Status == ConnectionStatus.Connected && !owner.CurrentState.IsReconnect);
        Assert.Equal([0, 1, 2, 3, 4], received);
        Assert.False((await _server.SessionStore.GetAsync(sessionId))!.ContainsKey("intruder")); // refused before its keys were taken

        owner.Dispose(); // the owner goes: the session is free
        await intruder.WhenConnectedAsync().For();
        Assert.Equal(sessionId, intruder.Session.Id);
        Assert.True(intruder.CurrentState.Resumed);
        Assert.Equal("A", intruder.Session.Get<string>("owner"));
    }

    [Fact]
    public async Task Two_clients_that_both_held_the_session_settle_on_one_instead_of_taking_it_in_turn()
    {
        var first = Client(null);
        await first.WhenConnectedAsync().For();
        var saved = first.Session.Get();
        var second = Client(new Dictionary<string, JToken>(saved));
        var secondRefused = second.State.Where(s => s.Error is SessionInUseException).Replay();
        using var connectSecond = secondRefused.Connect();
        await Wait.First(secondRefused);

        // The first client's link is cut: the second gets in while the first reconnects, or the first takes it back;
        // either way both have held the session once, and both now name their instance to the server.
        Assert.True(_accepted.TryPeek(out var firstLink));
        firstLink!.Dispose();
        await Until(() => _accepted.Count >= 2);

        // One of them holds the session from now on, and the other is refused again and again: no more links are made.
        var accepted = _accepted.Count;
        var firstRefusals = first.State.Where(s => s.Error is SessionInUseException).Replay();
        using var connectFirst = firstRefusals.Connect();
        var refused = await Task.WhenAny(Wait.First(firstRefusals.Skip(4)), Wait.First(secondRefused.Skip(6))).For();
        await refused;
        Assert.InRange(_accepted.Count, accepted, accepted + 1); // at most the one take that was under way
        var holder = first.CurrentState.Status == ConnectionStatus.Connected ? first : second;
        var other = ReferenceEquals(holder, first) ? second : first;
        Assert.Equal(ConnectionStatus.Connected, holder.CurrentState.Status);
        Assert.NotEqual(ConnectionStatus.Connected, other.CurrentState.Status);
        var stable = _accepted.Count;
        await Wait.First(other.State.Where(s => s.Error is SessionInUseException).Skip(3));
        Assert.Equal(stable, _accepted.Count);
    }

    [Fact]
    public async Task A_client_restored_after_the_owner_vanished_gets_the_session_once_the_owner_fails_a_probe()
    {
        // The owner's machine vanishes: its socket stays open on the server, and nothing comes from it any more. Its
        // heartbeat timeout is two minutes; the probe drops its link in half a second.
        await using var server = new UhuraServer(new UhuraServerOptions { Connection = new ConnectionOptions { SessionProbeTimeout = TimeSpan.FromMilliseconds(500) } });
        var accepted = new ConcurrentQueue<Connection>();
        server.Connections.Subscribe(accepted.Enqueue);
        await server.ListenAsync("tcp://127.0.0.1:0");
        await using var transport = new FreezableTransport(Rx.Uhura.Transport.SocketTransport.Instance);
        var owner = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Transport = transport, Reconnect = Fast, Connection = new ConnectionOptions { HeartbeatInterval = TimeSpan.FromMinutes(1) } });
        _clients.Add(owner);
        await owner.WhenConnectedAsync().For();
        owner.Session.Set("owner", "A");
        var sessionId = owner.Session.Id!;
        await Until(() => server.SessionStore.GetAsync(sessionId).Result?.ContainsKey("owner") == true);
        var saved = owner.Session.Get();
        Assert.True(accepted.TryPeek(out var ownerLink));
        transport.Freeze();
        owner.Dispose(); // its close never reaches the server

        var restarted = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Reconnect = Fast, InitialSession = new Dictionary<string, JToken>(saved) });
        _clients.Add(restarted);
        var refused = restarted.State.Where(s => s.Error is SessionInUseException).Replay();
        using var connect = refused.Connect();
        await restarted.WhenConnectedAsync().For(); // within the 10 s wait: the probe, not the owner's 2 min heartbeat timeout
        await Wait.First(refused); // it was refused first, while the owner's link was live
        var ended = await Wait.First(ownerLink!.Disconnected);
        Assert.Equal(DisconnectReason.TransportError, ended.Reason);
        Assert.Contains("probe", ended.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(sessionId, restarted.Session.Id);
        Assert.True(restarted.CurrentState.Resumed);
        Assert.Equal("A", restarted.Session.Get<string>("owner"));
    }

    private static Task Until(Func<bool> condition) => Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(2)).Where(_ => condition()));

    private UhuraClient Client(IReadOnlyDictionary<string, JToken>? session)
    {
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Reconnect = Fast, InitialSession = session });
        _clients.Add(client);
        return client;
    }
}
