using Microsoft.Reactive.Testing;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Time;

/// <summary>
/// The one heartbeat logic of both link engines (<see cref="Liveness"/>), on a virtual clock: a ping is due after this
/// side's silence, the peer is silent after its own, and a link that stopped reading to wait for the application never
/// takes the peer's unread bytes for silence.
/// </summary>
public sealed class LivenessTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PingAfter = TimeSpan.FromSeconds(1);

    private readonly TestScheduler _scheduler = new();
    private readonly Liveness _liveness;

    public LivenessTests() => _liveness = new Liveness(new SchedulerTimeProvider(_scheduler));

    private LivenessVerdict After(double seconds)
    {
        _scheduler.AdvanceBy(TimeSpan.FromSeconds(seconds).Ticks);
        return _liveness.Check(Limit, PingAfter);
    }

    [Fact]
    public void A_ping_is_due_after_this_sides_silence_and_the_peer_is_silent_after_its_own()
    {
        Assert.Equal(LivenessVerdict.Alive, After(0.999));
        Assert.Equal(LivenessVerdict.Ping, After(0.001));
        _liveness.NoteWrite();
        Assert.Equal(LivenessVerdict.Alive, After(0.5));
        Assert.Equal(LivenessVerdict.PeerSilent, After(0.5)); // 2 s since anything was read
        _liveness.NoteRead();
        Assert.Equal(LivenessVerdict.Ping, After(0)); // written 1 s ago
    }

    [Fact]
    public void A_suspended_link_never_finds_the_peer_silent_and_counts_again_from_its_resumption()
    {
        _liveness.Suspend();
        Assert.Equal(LivenessVerdict.Ping, After(120)); // this side still owes pings; the peer is not judged
        _liveness.NoteWrite();
        _liveness.Resume();
        Assert.Equal(LivenessVerdict.Alive, After(0.9));
        Assert.Equal(LivenessVerdict.PeerSilent, After(1.1)); // 2 s after the resumption, not 122 s after the last read
    }

    [Fact]
    public void Reads_are_counted_even_when_the_clock_stands_still()
    {
        var before = _liveness.Reads;
        _liveness.NoteRead();
        _liveness.Suspend();
        _liveness.Resume(); // a resumption counts as a read: what waited unread may be the answer
        Assert.Equal(before + 2, _liveness.Reads);
    }

    [Fact]
    public void An_infinite_limit_never_finds_the_peer_silent()
    {
        _scheduler.AdvanceBy(TimeSpan.FromDays(30).Ticks);
        Assert.Equal(LivenessVerdict.Ping, _liveness.Check(Timeout.InfiniteTimeSpan, PingAfter));
    }

    [Fact]
    public void Restart_counts_both_silences_from_now()
    {
        After(10);
        _liveness.Restart();
        Assert.Equal(LivenessVerdict.Alive, After(0.5));
    }
}
