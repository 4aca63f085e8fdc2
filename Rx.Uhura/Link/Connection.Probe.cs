using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura;

public sealed partial class Connection
{
    private ITimer? _probeTimer; // set while a probe of this link is under way (under _gate)

    /// <summary>
    /// Server, native wire: another client presented this live link's session and was refused. Pings the peer (one probe
    /// at a time) and drops the link as dead when nothing arrived from the peer within
    /// <see cref="ConnectionOptions.SessionProbeTimeout"/>, unless this side's reading waited for the subscribers meanwhile
    /// (the answer may be unread). Its peer's machine may have vanished without closing the socket, and a restarted
    /// process is knocking with the saved session: it need not wait for the heartbeat timeout.
    /// </summary>
    internal void ProbeForClaim()
    {
        var timeout = _options.SessionProbeTimeout;
        if (timeout == Timeout.InfiniteTimeSpan || _liveness is not { } liveness)
        {
            return;
        }

        var time = _options.TimeProvider;
        lock (_gate)
        {
            if (HasEnded || _probeTimer is not null)
            {
                return;
            }

            // The read count is taken before the ping leaves: any read after it, the answer or anything else, is life.
            _probeTimer = time.CreateTimer(static state => ((ProbeState)state!).Link.EndProbe(((ProbeState)state).Since), new ProbeState(this, liveness.Reads), timeout, Timeout.InfiniteTimeSpan);
        }

        _logger.LogInformation("Connection {Id}: another client presented its session; probing the peer for {Timeout}", Id, timeout);
        WriteNativeControl(static (output, nonce) => NativeFrameWriter.WritePing(output, nonce), (ulong)time.GetTimestamp());
    }

    /// <summary>The probe's time is up: the link is dropped when nothing was read since <paramref name="since"/> (the read count at its start).</summary>
    private void EndProbe(long since)
    {
        ITimer? timer;
        lock (_gate)
        {
            timer = _probeTimer;
            _probeTimer = null;
        }

        timer?.Dispose();
        var liveness = _liveness!;
        if (!HasEnded && !liveness.IsSuspended && liveness.Reads == since)
        {
            var timeout = _options.SessionProbeTimeout;
            _logger.LogInformation("Connection {Id}: the peer did not answer a probe within {Timeout}; dropping the link for the client that presented its session", Id, timeout);
            Shutdown(new DisconnectInfo(DisconnectReason.TransportError, new TimeoutException($"No frame from the peer within {timeout.TotalMilliseconds} ms of a probe (another client presented this link's session).")));
        }
    }

    private sealed record ProbeState(Connection Link, long Since);
}
