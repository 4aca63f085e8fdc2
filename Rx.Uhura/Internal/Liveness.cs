namespace Rx.Uhura.Internal;

/// <summary>What a liveness check finds: all is well, this side should write a ping, or the peer has been silent too long.</summary>
internal enum LivenessVerdict
{
    Alive,
    Ping,
    PeerSilent,
}

/// <summary>
/// A link's liveness on one clock, the one heartbeat logic of both link engines (a <see cref="Connection"/>'s native
/// heartbeats, a mesh link's pings and peer timeout): when the link last read something from the peer, when it last
/// wrote something, and whether reading is suspended — the read loop waits for the application, so the peer's bytes
/// wait unread and its silence says nothing about it. Heartbeats measure what the peer sent, not how fast the
/// application consumes it.
/// </summary>
internal sealed class Liveness
{
    private readonly TimeProvider _time;
    private long _lastRead;
    private long _reads; // written by the read loop alone
    private long _lastWrite;
    private int _suspended;

    /// <summary>Starts counting both silences from now.</summary>
    public Liveness(TimeProvider time)
    {
        _time = time;
        Restart();
    }

    /// <summary>True while reading is suspended (the read loop waits for room to deliver).</summary>
    public bool IsSuspended => Volatile.Read(ref _suspended) != 0;

    /// <summary>When something was last read (a timestamp of the clock).</summary>
    public long LastRead => Volatile.Read(ref _lastRead);

    /// <summary>How many times something was read (a probe compares two counts: a clock may not move between reads).</summary>
    public long Reads => Volatile.Read(ref _reads);

    /// <summary>Both silences count from now.</summary>
    public void Restart()
    {
        var now = _time.GetTimestamp();
        Volatile.Write(ref _lastRead, now);
        Volatile.Write(ref _lastWrite, now);
    }

    /// <summary>Something arrived from the peer (the read loop's call).</summary>
    public void NoteRead()
    {
        Volatile.Write(ref _lastRead, _time.GetTimestamp());
        Volatile.Write(ref _reads, _reads + 1);
    }

    /// <summary>Something was written to the peer (a ping is due only after a silence of this side).</summary>
    public void NoteWrite() => Volatile.Write(ref _lastWrite, _time.GetTimestamp());

    /// <summary>The read loop stops reading to wait for the application: the peer's silence is not counted meanwhile.</summary>
    public void Suspend() => Volatile.Write(ref _suspended, 1);

    /// <summary>
    /// Reading resumes: the peer's silence counts from now. Noted before the suspension lifts, so a check never sees
    /// the old time unsuspended.
    /// </summary>
    public void Resume()
    {
        NoteRead();
        Volatile.Write(ref _suspended, 0);
    }

    /// <summary>
    /// The peer is silent when nothing was read for <paramref name="silenceLimit"/> (never while suspended, never when
    /// it is <see cref="Timeout.InfiniteTimeSpan"/>); otherwise a ping is due when nothing was written for
    /// <paramref name="pingAfter"/>.
    /// </summary>
    public LivenessVerdict Check(TimeSpan silenceLimit, TimeSpan pingAfter)
    {
        var now = _time.GetTimestamp();
        if (silenceLimit != Timeout.InfiniteTimeSpan && !IsSuspended && _time.GetElapsedTime(Volatile.Read(ref _lastRead), now) >= silenceLimit)
        {
            return LivenessVerdict.PeerSilent;
        }

        return _time.GetElapsedTime(Volatile.Read(ref _lastWrite), now) >= pingAfter ? LivenessVerdict.Ping : LivenessVerdict.Alive;
    }
}
