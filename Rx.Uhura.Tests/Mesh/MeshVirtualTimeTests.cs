using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>The node's timers (heartbeats, dead peers, handshakes, acks, buffers, backoff) on a virtual clock, over real sockets.</summary>
public sealed class MeshVirtualTimeTests : IAsyncLifetime
{
    private readonly TestScheduler _scheduler = new();
    private readonly MeshTestKit _kit = new();
    private readonly List<IAsyncDisposable> _disposables = [];

    private UhuraNodeOptions Virtual => UhuraNodeOptions.Default with { TimeProvider = new SchedulerTimeProvider(_scheduler) };

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }

        await _kit.DisposeAsync();
    }

    private void Advance(TimeSpan by) => _scheduler.AdvanceBy(by.Ticks);

    private async Task<RawMeshPeer> RawAsync(UhuraNode node, string id = "zz-raw")
    {
        var raw = await RawMeshPeer.ConnectAsync(node.Info!, id);
        _disposables.Add(raw);
        await raw.ReadFrameAsync(MeshFrameType.Sync);
        return raw;
    }

    [Fact]
    public async Task A_heartbeat_goes_out_after_a_second_of_silence_and_a_peer_silent_for_the_peer_timeout_is_dropped()
    {
        var node = await _kit.StartAsync("a", Virtual);
        var raw = await RawAsync(node);
        var dropped = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.Disconnect);

        Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(MeshFrameType.Ping, (await raw.ReadFrameAsync()).Type);

        // Anything from the peer keeps it alive: a packet at 4.5 s moves the 5 s deadline to 9.5 s.
        Advance(TimeSpan.FromSeconds(3.5));
        var message = Wait.First(node.Messages);
        await raw.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Packet, new JObject { ["alive"] = true }));
        await message;
        Advance(TimeSpan.FromSeconds(4.5));
        Assert.False(dropped.IsCompleted);

        Advance(TimeSpan.FromSeconds(0.5));
        var disconnect = await dropped;
        Assert.Equal("zz-raw", disconnect.PeerId);
        Assert.Contains("Nothing arrived", Assert.IsType<PeerLostException>(disconnect.Error).Message);
        await raw.ReadUntilClosedAsync();
    }

    [Fact]
    public async Task A_masterless_node_sends_true_as_its_heartbeat()
    {
        var node = await _kit.StartAsync("a", Virtual with { Protocol = MeshProtocol.Masterless });
        await using var raw = await RawPeer.ConnectAsync(UhuraEndpoint.Parse(node.Info!));
        await raw.WriteAsync("{\"id\":\"zz\",\"info\":\"tcp://127.0.0.1:1\"}\r\n");
        await raw.ReadUntilAsync("{\"id\":\"a\",\"uhura\":1}\r\n");
        await raw.WriteAsync("{\"priority\":1}\r\n");
        await raw.ReadUntilAsync("[false]\r\n");
        Advance(TimeSpan.FromSeconds(1));
        await raw.ReadUntilAsync("[false]\r\ntrue\r\n");
    }

    [Fact]
    public async Task A_connection_that_does_not_finish_its_handshake_in_time_is_closed()
    {
        var node = await _kit.StartAsync("a", Virtual with { HandshakeTimeout = TimeSpan.FromSeconds(3) });
        await using var silent = await RawPeer.ConnectAsync(UhuraEndpoint.Parse(node.Info!));
        await Wait.First(node.OpenLinks, n => n == 1);
        Advance(TimeSpan.FromSeconds(2.5));
        Assert.Equal(1, await node.OpenLinks.FirstAsync());
        Advance(TimeSpan.FromSeconds(0.5));
        await Wait.First(node.OpenLinks, n => n == 0);
    }

    [Fact]
    public async Task Bus_events_are_acknowledged_cumulatively_once_per_interval()
    {
        var a = await _kit.StartAsync("a", Virtual);
        var b = await _kit.StartAsync("b", Virtual);
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var acks = a.NodeEvents.Where(e => e.Kind == NodeEventKind.Acknowledge).Replay();
        using var _ = acks.Connect();
        var three = Wait.First(b.Events.Skip(2));
        a.Emit("e", 1);
        a.Emit("e", 2);
        a.Emit("e", 3);
        await three;
        await b.WhenDeliveredAsync().For(); // acknowledged is what the subscribers returned from: event 3's returned
        Advance(TimeSpan.FromSeconds(0.9));
        Advance(TimeSpan.FromSeconds(0.1)); // b's acknowledgement timer: one Ack for all three
        var ack = await Wait.First(acks);
        Assert.Equal("b", ack.PeerId);
        Assert.Equal(3UL, ack.Sequence);
    }

    [Fact]
    public async Task A_full_buffer_drops_its_oldest_event_and_says_so()
    {
        var a = await _kit.StartAsync("a", Virtual with { BufferMax = 3 });
        var b = await _kit.StartAsync("b", Virtual);
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var overflows = a.NodeEvents.Where(e => e.Kind == NodeEventKind.BufferOverflow).Replay();
        using var _ = overflows.Connect();
        for (var i = 1; i <= 5; i++)
        {
            a.Emit("e", i); // nothing is acknowledged until the clock moves
        }

        var dropped = await overflows.Take(2).ToList().ToTask().For();
        Assert.Equal([1UL, 2UL], dropped.Select(e => e.Sequence));
        Assert.All(dropped, e => Assert.Equal("b", e.PeerId));
    }

    [Fact]
    public async Task Unacknowledged_events_expire_after_the_buffer_timeout_and_say_so()
    {
        var node = await _kit.StartAsync("a", Virtual with { BufferTimeout = TimeSpan.FromSeconds(10), PeerTimeout = Timeout.InfiniteTimeSpan });
        var raw = await RawAsync(node);
        var expired = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.BufferExpired);
        node.Emit("e", 1);
        node.Emit("e", 2);
        await raw.ReadFrameAsync(MeshFrameType.Bus);
        Advance(TimeSpan.FromSeconds(9));
        Assert.False(expired.IsCompleted);
        Advance(TimeSpan.FromSeconds(1));
        var e = await expired;
        Assert.Equal(2, e.Count);
        Assert.Equal(2UL, e.Sequence);
    }

    [Fact]
    public async Task A_link_that_acknowledges_nothing_for_the_inactivity_timeout_is_dropped()
    {
        var node = await _kit.StartAsync("a", Virtual with { PeerTimeout = Timeout.InfiniteTimeSpan });
        var raw = await RawAsync(node);
        var dropped = Wait.First(node.NodeEvents, e => e.Kind == NodeEventKind.Disconnect);
        node.Emit("e", 1);
        await raw.ReadFrameAsync(MeshFrameType.Bus);
        Advance(TimeSpan.FromSeconds(59));
        Assert.False(dropped.IsCompleted);
        Advance(TimeSpan.FromSeconds(1));
        Assert.Contains("acknowledged nothing", Assert.IsType<PeerLostException>((await dropped).Error).Message);
    }

    [Fact]
    public async Task An_acknowledgement_restarts_the_inactivity_clock()
    {
        var node = await _kit.StartAsync("a", Virtual with { PeerTimeout = Timeout.InfiniteTimeSpan });
        var raw = await RawAsync(node);
        var events = node.NodeEvents.Replay();
        using var _ = events.Connect();
        node.Emit("e", 1);
        var bus = await raw.ReadFrameAsync(MeshFrameType.Bus);
        Advance(TimeSpan.FromSeconds(50));
        await raw.WriteAsync(NativeMeshCodec.Number(MeshFrameType.Ack, bus.Number));
        await Wait.First(events, e => e.Kind == NodeEventKind.Acknowledge);
        Advance(TimeSpan.FromSeconds(120));
        Assert.Empty(await events.Where(e => e.Kind == NodeEventKind.Disconnect).TakeUntil(Observable.Return(0)).ToList());
        Assert.Equal(["zz-raw"], node.Peers);
    }

    [Fact]
    public async Task A_kept_peer_is_redialled_with_exponential_backoff_on_the_clock()
    {
        var clock = new TimerWatchingTimeProvider(new SchedulerTimeProvider(_scheduler));
        var b = await _kit.StartAsync("b", Virtual with
        {
            TimeProvider = clock,
            Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(700), UseJitter = false },
        });
        var a = await _kit.StartAsync("a");
        var proxy = ChaosProxy.Start(UhuraEndpoint.Parse(a.Info!));
        _disposables.Add(proxy);
        await b.ConnectAsync(proxy.Uri).For();
        var backoffs = b.NodeEvents.Where(e => e.Kind == NodeEventKind.Backoff).Replay();
        using var _ = backoffs.Connect();

        var back = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Reconnect);
        proxy.SetRefusing(true);
        proxy.CutAll();
        var delays = new List<TimeSpan>();
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            var backoff = await Wait.First(backoffs.Skip(attempt - 1));
            Assert.Equal(attempt, backoff.Attempt);
            Assert.Equal("a", backoff.PeerId);
            delays.Add(backoff.Delay);
            await Wait.First(clock.Timers.Where(due => due == backoff.Delay).Skip(delays.Count(d => d == backoff.Delay) - 1)); // Polly armed this delay
            var accepted = proxy.Accepted;
            Advance(backoff.Delay - TimeSpan.FromMilliseconds(1));
            Assert.Equal(accepted, proxy.Accepted); // not before its delay
            if (attempt == 5)
            {
                proxy.SetRefusing(false); // the sixth attempt gets through
            }

            Advance(TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal([100, 200, 400, 700, 700], delays.Select(d => (int)d.TotalMilliseconds));
        Assert.Equal("a", (await back).PeerId);
        Assert.Equal(7, proxy.Accepted); // the first link, five refused attempts, the one that got through
    }

    [Fact]
    public async Task A_kept_peer_that_accepts_and_drops_every_link_without_a_word_does_not_reset_the_backoff()
    {
        var clock = new TimerWatchingTimeProvider(new SchedulerTimeProvider(_scheduler));
        var b = await _kit.StartAsync("b", Virtual with
        {
            TimeProvider = clock,
            Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(700), UseJitter = false },
        });
        var a = await _kit.StartAsync("a");
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var backoffs = b.NodeEvents.Where(e => e.Kind == NodeEventKind.Backoff).Replay();
        using var _ = backoffs.Connect();

        // From now on a drops every link from b as soon as it is ready, before saying anything on it.
        using var dropper = a.PeerConnected.Subscribe(id => a.Disconnect(id));
        a.Disconnect("b");
        var delays = new List<TimeSpan>();
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var backoff = await Wait.First(backoffs.Skip(attempt - 1));
            Assert.Equal(attempt, backoff.Attempt); // a link that carried nothing is no success: the count goes on
            Assert.Equal("a", backoff.PeerId);
            delays.Add(backoff.Delay);
            await Wait.First(clock.Timers.Where(due => due == backoff.Delay)); // Polly armed this delay
            Advance(backoff.Delay);
        }

        Assert.Equal([100, 200, 400], delays.Select(d => (int)d.TotalMilliseconds));
    }

    [Fact]
    public async Task A_peer_that_kept_the_link_and_does_not_come_back_is_forgotten_after_the_buffer_timeout()
    {
        var a = await _kit.StartAsync("a", Virtual with { BufferTimeout = TimeSpan.FromSeconds(30) });
        var b = await _kit.StartAsync("b");
        var proxy = ChaosProxy.Start(UhuraEndpoint.Parse(a.Info!));
        _disposables.Add(proxy);
        await b.ConnectAsync(proxy.Uri).For(); // b keeps a; a does not keep b
        await a.WhenConnectedAsync("b").For();
        var lost = Wait.First(a.NodeEvents, e => e.Kind == NodeEventKind.Disconnect);
        var gone = Wait.First(a.PeerDisconnected);
        proxy.SetRefusing(true);
        proxy.CutAll();
        await lost;

        // a holds b's state, waiting for b to dial again...
        a.Emit("while-away", 1);
        Advance(TimeSpan.FromSeconds(29));
        Assert.False(gone.IsCompleted);

        // ...until the buffer timeout.
        Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("b", await gone);
    }

    /// <summary>A clock that tells when a timer is armed, so a test advances time only once the delay it expects is waiting.</summary>
    private sealed class TimerWatchingTimeProvider(TimeProvider inner) : TimeProvider
    {
        private readonly System.Reactive.Subjects.ReplaySubject<TimeSpan> _timers = new();

        public IObservable<TimeSpan> Timers => _timers;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            _timers.OnNext(dueTime);
            return timer;
        }
    }
}
