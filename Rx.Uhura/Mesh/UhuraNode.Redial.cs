using System.Reactive.Disposables;
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

/// <summary>A link that ended, and the redial of a kept peer whose link was lost.</summary>
public sealed partial class UhuraNode
{
    /// <summary>Called by a link once both its loops ended and its socket is closed.</summary>
    internal void OnLinkClosed(MeshLink link)
    {
        var raised = new List<NodeEvent>();
        (MeshPeer Peer, SingleAssignmentDisposable Subscription)? redial = null;
        lock (_gate)
        {
            _links.Remove(link);
            CountOpenLinksLocked();
            var wasStable = link.Phase == LinkPhase.Stable;
            link.Phase = LinkPhase.Closed;
            link.Handshake.TrySetException(link.CloseReason ?? new PeerLostException("The connection closed during the handshake.", link.RemoteId));
            if (wasStable && !link.Superseded && link.RemoteId is { } id && _peers.TryGetValue(id, out var peer) && peer.Link == link)
            {
                peer.Link = null;
                peer.LostAt = Time.GetTimestamp();
                _lostLinks[id] = link.LinkId;
                raised.Add(new NodeEvent(NodeEventKind.Disconnect) { PeerId = id, Error = link.CloseReason });
                if (_closed)
                {
                    // Closing: nothing is reconnected or forgotten one by one.
                }
                else if (peer.KeepLocal && peer.Address is not null)
                {
                    if (peer.Redial is null)
                    {
                        // The first loss: the redial starts (a running one sees its link end and re-subscribes).
                        var subscription = new SingleAssignmentDisposable();
                        peer.Redial = subscription;
                        redial = (peer, subscription);
                    }
                }
                else
                {
                    StopRedialLocked(peer);
                    if (Protocol == MeshProtocol.Native && peer.KeepRemote && link.CloseReason is not null)
                    {
                        // The remote keeps this link and will dial again: hold its buffers until it does (or BufferTimeout).
                    }
                    else
                    {
                        raised.AddRange(ForgetLocked(peer, link.CloseReason));
                    }
                }
            }
        }

        if (link.CloseReason is { } reason && reason is not PeerRefusedException)
        {
            _logger.LogDebug(reason, "Node {NodeId}: {Link} ended", Id, link);
        }

        PublishOpenLinks();
        Raise(raised);
        if (redial is var (redialled, slot))
        {
            slot.Disposable = Redial(redialled, slot);
        }
    }

    /// <summary>
    /// Redials a kept peer: <see cref="PeerLinks"/> retried with <see cref="UhuraNodeOptions.Reconnect"/>'s backoff through
    /// the same operator as the client (<see cref="ObservableResilienceExtensions.RetryWith{T}"/>). Reconnecting is
    /// re-subscribing; a link on which the peer said nothing does not reset the backoff. When the backoff gives up, the
    /// peer is forgotten (<see cref="NodeEventKind.PeerGone"/> with a <see cref="ReconnectFailedException"/>).
    /// </summary>
    private IDisposable Redial(MeshPeer peer, IDisposable slot)
    {
        var retries = 0;
        var pipeline = ReconnectPipeline.Build(Options.Reconnect, Time, (attempt, delay, error) =>
        {
            Volatile.Write(ref retries, attempt);
            Raise(new NodeEvent(NodeEventKind.Backoff) { PeerId = peer.Id, Attempt = attempt, Delay = delay, Error = error });
        });
        return PeerLinks(peer)
            .RetryWith(pipeline, static link => link.MadeProgress)
            .Subscribe(
                static _ => { },
                error =>
                {
                    Ended(peer, slot);
                    GiveUp(peer, new ReconnectFailedException(Volatile.Read(ref retries), error));
                },
                () => Ended(peer, slot));
    }

    /// <summary>A redial that ended by itself leaves room for the next one.</summary>
    private void Ended(MeshPeer peer, IDisposable slot)
    {
        lock (_gate)
        {
            if (peer.Redial == slot)
            {
                peer.Redial = null;
            }
        }
    }

    /// <summary>
    /// The links to a kept peer, one per subscription: THE link if the peer is connected (it dialled us back), else a dial
    /// and its handshake. Emits the link, then fails when it ends: with <see cref="ResubscribeNowException"/> when the peer
    /// talked on it (a new outage, whose first dial is immediate), else with why it ended (the backoff goes on). Completes
    /// when there is nothing to redial: the peer is forgotten or no longer kept, the node closes, or another node answers
    /// at the peer's address (the peer is then forgotten).
    /// </summary>
    private IObservable<MeshLink> PeerLinks(MeshPeer peer) => Observable.Create<MeshLink>((observer, cancellationToken) => RetryWithPolicy.ObserveFaults(PeerLinkOnceAsync(peer, observer, cancellationToken)));

    /// <summary>One subscription of <see cref="PeerLinks"/>.</summary>
    private async Task PeerLinkOnceAsync(MeshPeer peer, IObserver<MeshLink> observer, CancellationToken cancellationToken)
    {
        await Task.Yield(); // off the thread that ended the last link (or the retry's timer)
        var link = await LinkToAsync(peer, cancellationToken).ConfigureAwait(false); // a failure after the redial stopped is observed by ObserveFaults
        if (link is null)
        {
            return;
        }

        observer.OnNext(link);
        await link.Closed.WaitAsync(cancellationToken).ConfigureAwait(false);
        throw link.MadeProgress || link.Superseded
            ? new ResubscribeNowException()
            : link.CloseReason ?? new PeerLostException($"The link to peer {peer.Id} ended before the peer said anything on it.", peer.Id);
    }

    /// <summary>THE link to the peer once there is one, dialling for it when needed; null when there is nothing to redial.</summary>
    private async Task<MeshLink?> LinkToAsync(MeshPeer peer, CancellationToken cancellationToken)
    {
        while (true)
        {
            string address;
            CancellationTokenSource attempt;
            lock (_gate)
            {
                if (_closed || !_peers.TryGetValue(peer.Id, out var current) || current != peer || !peer.KeepLocal || peer.Address is null)
                {
                    return null;
                }

                if (peer.Link is { Phase: LinkPhase.Stable } up)
                {
                    return up;
                }

                address = peer.Address;
                attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                peer.RedialAttempt = attempt;
            }

            try
            {
                var link = await DialAsync(address, peer.Id, keep: true, attempt.Token).ConfigureAwait(false);
                try
                {
                    await link.Handshake.Task.WaitAsync(attempt.Token).ConfigureAwait(false);
                    return link;
                }
                catch (PeerRefusedException ex) when (ex.Reason == PeerRefusal.UnexpectedNode)
                {
                    GiveUp(peer, ex); // another node lives there now: not retried
                    return null;
                }
                catch (Exception ex) when (ex is PeerRefusedException { Reason: PeerRefusal.Duplicate } || HasOtherLink(link, peer.Id))
                {
                    await WhenConnectedAsync(peer.Id, cancellationToken).ConfigureAwait(false); // de-duplication kept the other link
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // EstablishLocked cancels the dial when any link to the peer becomes THE link, this dial's own included
                    // (possibly before its handshake task completed): only a dial that lost is aborted.
                    lock (_gate)
                    {
                        if (link.Phase == LinkPhase.Stable)
                        {
                            return link;
                        }

                        link.Abort(null);
                    }
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The connect was cancelled because a link became THE link: adopt it.
            }
            finally
            {
                lock (_gate)
                {
                    if (peer.RedialAttempt == attempt)
                    {
                        peer.RedialAttempt = null;
                    }
                }

                attempt.Dispose();
            }
        }
    }

    /// <summary>The redial gave up: forgets the peer unless it came back, was forgotten already or the node closes.</summary>
    private void GiveUp(MeshPeer peer, Exception reason)
    {
        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (_peers.TryGetValue(peer.Id, out var current) && current == peer && peer.Link is null && !_closed)
            {
                raised = ForgetLocked(peer, reason);
            }
        }

        Raise(raised);
    }

    /// <summary>Ends the peer's redial, if one runs (off this thread: the caller holds the lock). Caller holds the lock.</summary>
    private static void StopRedialLocked(MeshPeer peer)
    {
        if (peer.RedialAttempt is { } attempt)
        {
            peer.RedialAttempt = null;
            MeshLink.CancelSoon(attempt);
        }

        if (peer.Redial is { } redial)
        {
            peer.Redial = null;
            ThreadPool.UnsafeQueueUserWorkItem(static r => r.Dispose(), redial, preferLocal: false);
        }
    }
}
