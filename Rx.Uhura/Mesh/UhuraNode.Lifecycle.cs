using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Mesh;

/// <summary>Closing the node, and the heartbeat that times out silent links and handshakes.</summary>
public sealed partial class UhuraNode
{
    /// <summary>
    /// Ends every link, stops listening and reconnecting, and completes the node's streams. Idempotent. The notifications
    /// already queued for the subscribers are delivered first (the streams complete after them), so the task waits for
    /// the subscribers. Called from inside one of them, the task it returns completes once the links are closed, without
    /// waiting for the subscribers (which wait for that one to return): waiting for it there does not deadlock. A bus
    /// event delivered here but not yet acknowledged (the links are gone) stays in its sender's buffer and is sent again
    /// to the node's next incarnation.
    /// </summary>
    public Task CloseAsync()
    {
        var fromSubscriber = _dispatcher.IsPumpingOnThisThread;
        Task close;
        lock (_gate)
        {
            close = _closeTask ??= CloseCoreAsync();
        }

        return fromSubscriber ? _linksClosed.Task : close;
    }

    /// <summary>Completes when <see cref="CloseAsync"/> has closed every link (before the subscribers are drained).</summary>
    private readonly TaskCompletionSource _linksClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private async Task CloseCoreAsync()
    {
        try
        {
            await CloseLinksAndDrainAsync().ConfigureAwait(false);
        }
        finally
        {
            _linksClosed.TrySetResult(); // also when closing failed: a caller inside a subscriber is never left waiting
        }
    }

    private async Task CloseLinksAndDrainAsync()
    {
        MeshLink[] links;
        ITransportListener? listener;
        lock (_gate)
        {
            _closed = true;
            links = [.. _links];
            listener = _listener;
            foreach (var peer in _peers.Values)
            {
                StopRedialLocked(peer);
            }
        }

        _closing.Cancel();
        _heartbeatTimer.Dispose();
        _busTimer.Dispose();
        if (listener is not null)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await _acceptLoop.ConfigureAwait(false);
        foreach (var link in links)
        {
            link.CloseAfter(Wire.Goodbye("node closed"u8), null);
        }

        var closed = Task.WhenAll(links.Select(static l => l.Closed));
        if (await Task.WhenAny(closed, Task.Delay(Options.HandshakeTimeout, Time)).ConfigureAwait(false) != closed)
        {
            foreach (var link in links)
            {
                link.Abort(null); // the peer did not close its side in time
            }
        }

        await closed.ConfigureAwait(false);
        _linksClosed.TrySetResult();

        // Every link ended, so nothing more is queued but a stray timer's or redial's event, which is dropped. What was
        // queued before is delivered first, then the dispatcher's pump completes Messages, Events and NodeEvents. A
        // subscriber that never returns keeps this waiting: Rx cannot complete a stream during an OnNext.
        _dispatcher.Enqueue(Delivery.Completion(this));
        _dispatcher.Complete();
        await _dispatcher.Completion.ConfigureAwait(false);
        _logger.LogInformation("Node {NodeId} closed", Id);
        _listening.OnCompleted();
        _errors.OnCompleted();
        lock (_openLinksGate)
        {
            _openLinks.OnCompleted();
        }

        _closing.Dispose();
    }

    private void OnHeartbeatTick()
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            var now = Time.GetTimestamp();
            foreach (var link in _links)
            {
                if (link.IsClosing)
                {
                    // A graceful close waits for the peer to close its side too, but not forever.
                    if (link.ClosingSince is { } since && Time.GetElapsedTime(since, now) >= Options.HandshakeTimeout)
                    {
                        link.Abort(link.CloseReason);
                    }

                    continue;
                }

                if (link.Phase == LinkPhase.Handshaking)
                {
                    if (Time.GetElapsedTime(link.StartedAt, now) >= Options.HandshakeTimeout)
                    {
                        link.Abort(new PeerRefusedException(PeerRefusal.Timeout, $"The handshake took longer than {Options.HandshakeTimeout.TotalSeconds:0.###} s.", link.RemoteId ?? link.ExpectedId));
                    }
                }
                else if (link.Phase == LinkPhase.Stable)
                {
                    // A link waiting for room in the dispatcher is not reading, so its silence says nothing about the
                    // peer: the timeout measures what the peer sends, not how fast the subscribers consume.
                    switch (link.Liveness.Check(Options.PeerTimeout, Options.HeartbeatInterval))
                    {
                        case LivenessVerdict.PeerSilent:
                            link.Abort(new PeerLostException($"Nothing arrived from peer {link.RemoteId} for {Options.PeerTimeout.TotalSeconds:0.###} s: it is taken as dead.", link.RemoteId));
                            break;
                        case LivenessVerdict.Ping:
                            link.Enqueue(Wire.Heartbeat);
                            break;
                    }
                }
            }
        }
    }
}
