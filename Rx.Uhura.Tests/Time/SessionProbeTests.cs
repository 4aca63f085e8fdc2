using System.Reactive.Linq;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Time;

/// <summary>
/// The probe a refused client sets off (<see cref="ConnectionOptions.SessionProbeTimeout"/>), on the server's virtual
/// clock: a live link whose peer vanished is dropped exactly when the timeout passes, and one whose peer answered is
/// kept however long the clock runs. The clients run on real time, over real sockets; the server's clock moves only
/// when the test advances it.
/// </summary>
public sealed class SessionProbeTests : IAsyncLifetime
{
    private static readonly TimeSpan ProbeTimeout = ConnectionOptions.Default.SessionProbeTimeout;

    private readonly TestScheduler _clock = new();
    private readonly UhuraServer _server;
    private readonly List<Connection> _accepted = [];
    private readonly List<UhuraClient> _clients = [];

    public SessionProbeTests()
        => _server = new UhuraServer(new UhuraServerOptions { Connection = new ConnectionOptions { TimeProvider = new SchedulerTimeProvider(_clock) } });

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(c =>
        {
            lock (_accepted)
            {
                _accepted.Add(c);
            }
        });
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
    public async Task The_link_of_a_vanished_peer_is_dropped_when_the_probe_times_out_and_not_a_tick_before()
    {
        await using var transport = new FreezableTransport(Rx.Uhura.Transport.SocketTransport.Instance);
        var (owner, ownerLink) = await OwnerAsync(transport);
        var saved = owner.Session.Get();
        transport.Freeze();
        owner.Dispose(); // its close never reaches the server: the server's link stays open, and hears nothing more

        var restarted = await RefusedAsync(saved);
        _clock.AdvanceBy(ProbeTimeout.Ticks - 1);
        Assert.False(ownerLink.HasEnded);

        _clock.AdvanceBy(1);
        var ended = await Wait.First(ownerLink.Disconnected);
        Assert.Equal(DisconnectReason.TransportError, ended.Reason);
        Assert.IsType<TimeoutException>(ended.Error);

        restarted.Reconnect(); // its backoff is an hour: its next attempt now
        await restarted.WhenConnectedAsync().For();
        Assert.True(restarted.CurrentState.Resumed);
        Assert.Equal("A", restarted.Session.Get<string>("owner"));
    }

    [Fact]
    public async Task A_live_peer_answers_the_probe_and_keeps_its_link_however_long_the_clock_runs()
    {
        var (owner, ownerLink) = await OwnerAsync(Rx.Uhura.Transport.SocketTransport.Instance);
        var before = ownerLink.GetStatistics().BytesIn;
        var intruder = await RefusedAsync(owner.Session.Get());
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(2)).Where(_ => ownerLink.GetStatistics().BytesIn > before)); // the pong

        _clock.AdvanceBy(10 * ProbeTimeout.Ticks);
        Assert.False(ownerLink.HasEnded);
        Assert.Equal(ConnectionStatus.Connected, owner.CurrentState.Status);

        intruder.Reconnect(); // knocks again: refused again, and the owner is probed again and answers again
        await Wait.First(intruder.State.Where(s => s.Error is SessionInUseException));
        Assert.Single(_accepted);
    }

    private async Task<(UhuraClient Owner, Connection Link)> OwnerAsync(Rx.Uhura.Transport.ITransport transport)
    {
        var owner = Client(transport, session: null);
        await owner.WhenConnectedAsync().For();
        owner.Session.Set("owner", "A");
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(2)).Where(_ => _server.SessionStore.GetAsync(owner.Session.Id!).Result?.ContainsKey("owner") == true));
        lock (_accepted)
        {
            return (owner, _accepted.Single());
        }
    }

    /// <summary>A second client object presents the session and is refused once (its next attempt is an hour away).</summary>
    private async Task<UhuraClient> RefusedAsync(IReadOnlyDictionary<string, JToken> saved)
    {
        var refused = Client(Rx.Uhura.Transport.SocketTransport.Instance, saved);
        await Wait.First(refused.State.Where(s => s.Error is SessionInUseException));
        return refused;
    }

    private UhuraClient Client(Rx.Uhura.Transport.ITransport transport, IReadOnlyDictionary<string, JToken>? session)
    {
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions
        {
            Transport = transport,
            InitialSession = session,
            Reconnect = ReconnectOptions.Fixed(TimeSpan.FromHours(1)),
            Connection = new ConnectionOptions { HeartbeatInterval = TimeSpan.FromHours(1) }, // the server's heartbeat never decides here
        });
        _clients.Add(client);
        return client;
    }
}
