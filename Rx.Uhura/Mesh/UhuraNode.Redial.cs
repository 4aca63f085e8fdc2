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
        MeshPeer? reconnect = null;
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
                    reconnect = peer;
                    peer.Reconnecting = new CancellationTokenSource();
                }
                else if (Protocol == MeshProtocol.Native && peer.KeepRemote && link.CloseReason is not null)
                {
                    // The remote keeps this link and will dial again: hold its buffers until it does (or BufferTimeout).
                }
                else
                {
                    raised.AddRange(ForgetLocked(peer, link.CloseReason));
                }
            }
        }

        if (link.CloseReason is { } reason && reason is not PeerRefusedException)
        {
            _logger.LogDebug(reason, "Node {NodeId}: {Link} ended", Id, link);
        }

        PublishOpenLinks();
        Raise(raised);
        if (reconnect is not null)
        {
            _ = ReconnectAsync(reconnect, reconnect.Reconnecting!.Token);
        }
    }

    /// <summary>Dials a kept peer again with the backoff policy until it is back, a different node answers, or the policy gives up.</summary>
    private async Task ReconnectAsync(MeshPeer peer, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var retries = 0;
        var pipeline = ReconnectPipeline.Build(Options.Reconnect, Time, (attempt, delay, error) =>
        {
            retries = attempt;
            Raise(new NodeEvent(NodeEventKind.Backoff) { PeerId = peer.Id, Attempt = attempt, Delay = delay, Error = error });
        });
        Exception? giveUp = null;
        try
        {
            giveUp = await pipeline.ExecuteAsync(
                async token =>
                {
                    string address;
                    lock (_gate)
                    {
                        if (peer.Link is { Phase: LinkPhase.Stable } || !_peers.ContainsKey(peer.Id))
                        {
                            return null;
                        }

                        address = peer.Address!;
                    }

                    var link = await DialAsync(address, peer.Id, keep: true, token).ConfigureAwait(false);
                    try
                    {
                        await link.Handshake.Task.WaitAsync(token).ConfigureAwait(false);
                        return null;
                    }
                    catch (PeerRefusedException ex) when (ex.Reason == PeerRefusal.UnexpectedNode)
                    {
                        return (Exception?)ex; // another node lives there now: give up, do not retry
                    }
                    catch (Exception ex) when (ex is PeerRefusedException { Reason: PeerRefusal.Duplicate } || HasOtherLink(link, peer.Id))
                    {
                        await WhenConnectedAsync(peer.Id, token).ConfigureAwait(false);
                        return null;
                    }
                    catch (OperationCanceledException) when (link.Handshake.Task.IsCompletedSuccessfully)
                    {
                        return null; // this very link ended the outage (which cancels the loop)
                    }
                    catch (OperationCanceledException)
                    {
                        // EstablishLocked cancels this loop when any link to the peer becomes THE link, this dial's own
                        // included (and before its handshake task completes): only a dial that lost is aborted.
                        lock (_gate)
                        {
                            if (link.Phase != LinkPhase.Stable)
                            {
                                link.Abort(null);
                            }
                        }

                        throw;
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return; // connected by the peer's own dial, forgotten, or the node closed
        }
        catch (Exception ex)
        {
            giveUp = new ReconnectFailedException(retries, ex);
        }

        if (giveUp is null)
        {
            return;
        }

        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (_peers.TryGetValue(peer.Id, out var current) && current == peer && peer.Link is null && !_closed)
            {
                raised = ForgetLocked(peer, giveUp);
            }
        }

        Raise(raised);
    }
}
