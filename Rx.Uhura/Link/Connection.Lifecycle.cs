using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>
    /// Closes gracefully: waits (up to <see cref="ConnectionOptions.CloseTimeout"/>) until the events the peer sent before
    /// the call are delivered to the subscribers and acknowledged, and the queued sends are written and acknowledged; then
    /// ends the output, half-closes and waits for the peer to close. Sends still unacknowledged then fail with
    /// <see cref="ConnectionLostException"/>. Idempotent. May be called from a subscriber (it completes after that
    /// subscriber returns; do not wait for it synchronously there).
    /// </summary>
    public Task CloseAsync() => CloseAsync(_options.CloseTimeout);

    /// <inheritdoc cref="CloseAsync()"/>
    public Task CloseAsync(TimeSpan timeout)
    {
        lock (_gate)
        {
            return _closeTask ??= CloseCoreAsync(timeout);
        }
    }

    /// <summary>Closes gracefully; see <see cref="CloseAsync()"/>.</summary>
    public ValueTask DisposeAsync() => new(CloseAsync());

    /// <summary>Closes at once, without waiting: unsent and unacknowledged sends fail with <see cref="ConnectionLostException"/>.</summary>
    public void Dispose() => Shutdown(new DisconnectInfo(DisconnectReason.LocalClose));

    /// <summary>Called by the owner of messages a closing link could not deliver (a reconnecting client); without one they fail.</summary>
    internal Action<IReadOnlyList<OutboundMessage>, Exception?>? UndeliveredHandler { get; set; }

    private async Task CloseCoreAsync(TimeSpan timeout)
    {
        lock (_gate)
        {
            _closing = true;
        }

        using var deadline = new CancellationTokenSource(timeout, _options.TimeProvider);
        try
        {
            if (_started != 0 && !HasEnded)
            {
                await _ready.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
                // What the peer sent before the close began is delivered and acknowledged before the output ends: else a
                // subscriber that closes the link would leave its own event (and those queued behind it) delivered but
                // never acknowledged, and the peer would count them lost and send them again.
                await _dispatcher.WhenDeliveredAsync(this).WaitAsync(deadline.Token).ConfigureAwait(false);
                await WhenIdleAsync().WaitAsync(deadline.Token).ConfigureAwait(false);
                lock (_gate)
                {
                    EndOutputLocked();
                }

                await WhenDrainedAsync().WaitAsync(deadline.Token).ConfigureAwait(false);
                if (await Transport.HalfClose.SendAsync(_stream).ConfigureAwait(false))
                {
                    await _readLoop.WaitAsync(deadline.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            _logger.LogDebug("Connection {Id}: graceful close timed out after {Timeout}", Id, timeout);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            _logger.LogDebug(ex, "Connection {Id}: error while closing", Id);
        }

        Shutdown(new DisconnectInfo(DisconnectReason.LocalClose));
        await _readLoop.ConfigureAwait(false);
        if (_server is not null)
        {
            await Session.FlushAsync().ConfigureAwait(false);
        }
    }

    private ITimer? _handshakeTimer;

    private void OnHandshakeDeadline()
    {
        if (!_ready.Task.IsCompleted)
        {
            _logger.LogDebug("Connection {Id}: no handshake within {Timeout}", Id, _options.HandshakeTimeout);
            Shutdown(new DisconnectInfo(DisconnectReason.ProtocolError, new ProtocolException($"The client did not complete the handshake within {_options.HandshakeTimeout.TotalSeconds:0.###} s.") { ConnectionId = Id }));
        }
    }

    /// <summary>Ends the link once: fails or hands over what was not delivered, completes the observables.</summary>
    private void Shutdown(DisconnectInfo info)
    {
        info = _refusal ?? info; // a refused client's link ends as refused, however the socket closes
        List<OutboundMessage> undelivered;
        lock (_gate)
        {
            if (HasEnded)
            {
                return;
            }

            Reach(LinkProgress.Ended);
            _closing = true;
            undelivered = CollectUndeliveredLocked();
        }

        // The read loop, under the session's gate (the stream's, on a client), checks that the link is open, marks an
        // event received (native: the stream's LastReceived; Node wire: the session's dedup watermark) and queues it.
        // Passing that gate once, now that the link has ended, lets such a step still running finish: every event marked
        // received is queued before the completion below, never after it, where the link's completed dispatcher would
        // drop it, or its completed streams swallow it, while it counts as received, so its resend would be
        // acknowledged as a duplicate. Shutdown may run on another thread than the read loop (a superseding link).
        if ((_serverSession?.Gate ?? _native?.Gate) is { } deliveryGate)
        {
            lock (deliveryGate)
            {
                // nothing: a barrier
            }
        }

        _readCancel.Cancel();
        _heartbeatTimer?.Dispose();
        _probeTimer?.Dispose();
        Diagnostics.UhuraMetrics.ConnectionEnded(this);
        if (Interlocked.Exchange(ref _handshakeActivity, null) is { } handshake)
        {
            handshake.SetTag("uhura.protocol", _handler is { } wire ? Diagnostics.UhuraMetrics.ProtocolName(wire.Protocol) : null);
            Diagnostics.UhuraActivities.Stop(handshake, _refusal is not null ? "refused" : "failed", info.Error ?? new ProtocolException($"The link ended during the handshake ({info.Reason})."));
        }

        try
        {
            _stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }

        Session.DetachSink(this);
        _ready.TrySetResult(false);

        var handler = UndeliveredHandler;
        if (handler is not null)
        {
            handler(undelivered, info.Error);
        }
        else
        {
            foreach (var message in undelivered)
            {
                message.Fail(new ConnectionLostException(message.Name, info.Error) { ConnectionId = Id });
            }
        }

        if (info.Error is not null)
        {
            _logger.LogInformation(info.Error, "Connection {Id} closed: {Reason}", Id, info.Reason);
        }
        else
        {
            _logger.LogDebug("Connection {Id} closed: {Reason}", Id, info.Reason);
        }

        try
        {
            _server?.OnClosed(this, info);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {Id}: the server's bookkeeping of its end failed", Id);
        }

        // Events completes after every event already queued for delivery was delivered. Disconnected fires now: a
        // subscriber still busy with earlier events must not hold up what follows the end of the link (a reconnect).
        if (!_dispatcher.Enqueue(Delivery.Completion(this)))
        {
            _ = DispatchAsync(Delivery.Completion(this)); // the client's dispatcher already ended: complete here
        }

        if (_ownsDispatcher)
        {
            _dispatcher.Complete();
        }

        _disconnected.OnNext(info); // its observers are guarded
        _disconnected.OnCompleted();
    }

    /// <summary>
    /// Completes when <see cref="Shutdown"/> has finished (its undelivered sends handed over) and every event this link
    /// queued was delivered and its <see cref="Events"/> completed.
    /// </summary>
    internal Task ShutdownCompleted => _shutdownCompleted.Task;

    /// <summary>
    /// How far a link got, one way only (<see cref="Reach"/>): open (the handshake may still run: <see cref="HandshakeProgress"/>),
    /// its output ended (this side's Close or half-close is written or due, after a local close or the peer's Close, or a
    /// refusal; the peer may still send), ended (<see cref="Shutdown"/>: nothing is read, written or delivered any more).
    /// Who began the close is the other half of the state (<c>_closing</c>), since a peer's Close ends the output too.
    /// </summary>
    private enum LinkProgress
    {
        Open,
        OutputEnded,
        Ended,
    }

    /// <summary>
    /// How far the handshake got: awaiting the peer's greeting; (native) the peer's preface read; its greeting (Hello,
    /// Welcome, 'start') arrived and is being handled, so a second one is a protocol error; done (events flow); or,
    /// instead of done, refused (server: the client failed authentication; what it sends next is ignored until the link
    /// ends). Only moves forward: the read loop writes the first three, the handshake's end (under <c>_gate</c>) the
    /// last two. (A Node-wire client goes from awaiting to done: 'connect' is its greeting and its end at once.)
    /// </summary>
    private enum HandshakeProgress : byte
    {
        Awaiting,
        PrefaceRead,
        Greeted,
        Done,
        Refused,
    }

    /// <summary>The handshake is done: events flow (see <see cref="HandshakeProgress"/>).</summary>
    private bool HandshakeDone => _handshake == HandshakeProgress.Done;

    /// <summary>The peer's greeting arrived (it may still be being handled, or the handshake ended).</summary>
    private bool Greeted => _handshake >= HandshakeProgress.Greeted;

    /// <summary>The link ended (<see cref="LinkProgress.Ended"/>); read without the gate by the read loop.</summary>
    internal bool HasEnded => Volatile.Read(ref _phase) >= (int)LinkProgress.Ended;

    /// <summary>Nothing more is written after what is buffered (<see cref="LinkProgress.OutputEnded"/> or later).</summary>
    private bool OutputHasEnded => Volatile.Read(ref _phase) >= (int)LinkProgress.OutputEnded;

    /// <summary>Raises the link's progress to <paramref name="progress"/> (never lowers it). Under <c>_gate</c>.</summary>
    private void Reach(LinkProgress progress)
    {
        if ((int)progress > _phase)
        {
            Volatile.Write(ref _phase, (int)progress);
        }
    }
}
