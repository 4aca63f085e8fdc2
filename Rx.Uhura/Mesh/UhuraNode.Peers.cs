using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Mesh;

/// <summary>The peers: sending to them, keeping and forgetting them, making a link THE link of its peer.</summary>
public sealed partial class UhuraNode
{
    /// <summary>
    /// Sends a packet to one peer; false when no peer has that id. The packet (a JSON object: a <see cref="JObject"/>
    /// or any object that serializes to one) waits when the peer is handshaking or being reconnected.
    /// </summary>
    /// <exception cref="ArgumentException">The packet is not a JSON object (masterless's <c>TypeError</c>).</exception>
    /// <exception cref="EncodeException">The packet cannot be serialized (a reference loop, a task, nesting deeper than <see cref="UhuraNodeOptions.MaxJsonDepth"/>).</exception>
    /// <exception cref="FrameTooLargeException">The encoded packet is over <see cref="UhuraNodeOptions.MaxPacketSize"/> (nothing was sent or queued).</exception>
    public bool Send(string id, object packet)
    {
        ArgumentNullException.ThrowIfNull(id);
        var frame = EncodePacket(packet);
        lock (_gate)
        {
            return SendLocked(id, frame);
        }
    }

    /// <summary>
    /// Sends one packet to several peers (multi-dispatch): it is encoded once and the same bytes are written to each.
    /// Returns how many of the ids are peers (a repeated id is sent twice, as masterless does).
    /// </summary>
    /// <exception cref="ArgumentException">The packet is not a JSON object.</exception>
    /// <exception cref="EncodeException">The packet cannot be serialized.</exception>
    /// <exception cref="FrameTooLargeException">The encoded packet is over <see cref="UhuraNodeOptions.MaxPacketSize"/> (sent to none).</exception>
    public int Send(IEnumerable<string> ids, object packet)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var frame = EncodePacket(packet);
        var reached = 0;
        lock (_gate)
        {
            foreach (var id in ids)
            {
                if (id is not null && SendLocked(id, frame))
                {
                    reached++;
                }
            }
        }

        return reached;
    }

    /// <summary>
    /// Whether to keep the peer <paramref name="id"/>: a kept peer is reconnected with backoff when its link drops. The
    /// flag is told to the peer; a link that neither side keeps is closed. Before the peer is known the flag is
    /// remembered for when it connects.
    /// </summary>
    public void Keep(string id, bool keep = true)
    {
        ArgumentNullException.ThrowIfNull(id);
        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (!_peers.TryGetValue(id, out var peer))
            {
                _keepBeforeConnect[id] = keep;
                return;
            }

            peer.KeepLocal = keep;
            if (peer.Link is { Phase: LinkPhase.Stable } link)
            {
                link.Enqueue(Wire.Keep(keep));
                if (!keep && !peer.KeepRemote)
                {
                    raised = ForgetLocked(peer, null);
                }
            }
            else if (!keep && peer.Link is null)
            {
                raised = ForgetLocked(peer, null);
            }
        }

        Raise(raised);
    }

    /// <summary>Disconnects from the peer <paramref name="id"/> and forgets it (no reconnection); false when no peer has that id.</summary>
    public bool Disconnect(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        NodeEvent[] raised;
        lock (_gate)
        {
            _keepBeforeConnect.Remove(id);
            if (!_peers.TryGetValue(id, out var peer))
            {
                return false;
            }

            raised = ForgetLocked(peer, null);
        }

        Raise(raised);
        return true;
    }

    /// <summary>
    /// A task that completes when the peer <paramref name="id"/> is connected (at once if it is), or fails with a
    /// <see cref="TimeoutException"/> after <see cref="UhuraNodeOptions.HandshakeTimeout"/>.
    /// </summary>
    public async Task WhenConnectedAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connected = PeerConnected.Where(p => p == id).FirstAsync().ToTask(stop.Token); // subscribed before the check: no gap
        try
        {
            lock (_gate)
            {
                if (_peers.TryGetValue(id, out var peer) && peer.Link is { Phase: LinkPhase.Stable } && (Protocol == MeshProtocol.Masterless || peer.Link.BusInitialized))
                {
                    return;
                }
            }

            await connected.WaitAsync(Options.HandshakeTimeout, Time, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            stop.Cancel(); // ends the subscription
        }
    }

    private byte[] EncodePacket(object packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        JToken token;
        try
        {
            token = UhuraJson.ToToken(packet, _serializer, Options.MaxJsonDepth);
        }
        catch (JsonException ex)
        {
            throw new EncodeException("(packet)", ex);
        }

        if (token is not JObject)
        {
            throw new ArgumentException($"A packet must be a JSON object, not {token.Type}.", nameof(packet));
        }

        var frame = Wire.Packet(token);
        var size = frame.Length - Wire.PacketOverhead;
        if (size > Options.MaxPacketSize)
        {
            // Sent, it would make the peer drop the link, and a kept peer's redialled link would get it again: refused here.
            throw new FrameTooLargeException(Options.MaxPacketSize, $"A packet of {size} bytes exceeds MaxPacketSize ({Options.MaxPacketSize} bytes): nothing was sent.");
        }

        return frame;
    }

    private bool SendLocked(string id, byte[] frame)
    {
        if (!_peers.TryGetValue(id, out var peer))
        {
            return false;
        }

        if (peer.Link is { Phase: LinkPhase.Stable } link && link.Enqueue(frame))
        {
            return true;
        }

        if (peer.Pending.Count >= Options.MaxQueuedPackets)
        {
            return false;
        }

        peer.Pending.Enqueue(new OutFrame(null, frame));
        return true;
    }

    /// <summary>
    /// Makes <paramref name="link"/> THE link to its peer: replaces an older one, flushes queued packets, tells the keep
    /// flag and (native) starts the bus sync. Caller holds the lock.
    /// </summary>
    private List<NodeEvent> EstablishLocked(MeshLink link, List<NodeEvent> raised)
    {
        var id = link.RemoteId!;
        if (!_peers.TryGetValue(id, out var peer))
        {
            peer = new MeshPeer(id);
            _peers[id] = peer;
        }

        if (peer.Link is { } old && old != link)
        {
            if (Protocol == MeshProtocol.Masterless && link.RemoteIsUhura && old.RemoteIsUhura && old.Phase == LinkPhase.Stable && !old.IsClosing
                && DialerOf(link).CompareTo(DialerOf(old), StringComparison.Ordinal) > 0)
            {
                // Masterless's priorities can confirm both of two simultaneous connections (its own race). Two Rx.Uhura
                // ends then keep the connection dialled by the node with the smaller id, and close the other. With a
                // Node peer the later one replaces the earlier, as the Node package does.
                link.Superseded = true;
                link.Handshake.TrySetResult(id);
                link.CloseAfter(null, null);
                return raised;
            }

            old.Superseded = true;
            old.Abort(null);
        }

        _lostLinks.Remove(id);
        peer.Link = link;
        link.Phase = LinkPhase.Stable;
        var address = link.Outgoing ? link.DialedUri : link.RemoteInfo;
        if (address is not null)
        {
            peer.Address = address;
        }

        if (_keepBeforeConnect.Remove(id, out var keepFlag))
        {
            peer.KeepLocal = keepFlag;
        }

        peer.KeepLocal |= link.KeepIntent;
        peer.KeepRemote = true;
        var isReconnect = peer.EverConnected;
        peer.EverConnected = true;
        link.IsReconnect = isReconnect;
        if (Protocol == MeshProtocol.Native)
        {
            if (peer.RemoteIncarnation != link.RemoteIncarnation)
            {
                // A new process behind that id: its sequence numbers start again.
                peer.RemoteIncarnation = link.RemoteIncarnation;
                peer.Bus.Epoch++;
                peer.Bus.LastReceived = 0;
                peer.Bus.LastDelivered = 0;
                peer.Bus.LastAckSent = 0;
            }

            // Keep and Sync first, so the peer knows the link is ready before any packet arrives on it. The Sync names
            // what was delivered, not what was received: the peer resends the rest, and what of it still waits in the
            // dispatcher is dropped as a retransmission (at or below LastReceived), so nothing is lost or doubled.
            link.Enqueue(Wire.Keep(peer.KeepLocal));
            link.Enqueue(NativeMeshCodec.Number(MeshFrameType.Sync, peer.Bus.LastDelivered, isReconnect));
            FlushPending(peer, link);
        }
        else
        {
            FlushPending(peer, link); // masterless: queued packets, then connect, then the keep flag
            raised.Add(new NodeEvent(NodeEventKind.Initialized) { PeerId = id, Info = peer.Address, IsReconnect = isReconnect });
            if (isReconnect)
            {
                raised.Add(new NodeEvent(NodeEventKind.Reconnect) { PeerId = id, Info = peer.Address });
            }

            link.Enqueue(Wire.Keep(peer.KeepLocal));
        }

        _logger.LogDebug("Node {NodeId}: {Link} established", Id, link);
        link.Handshake.TrySetResult(id);
        if (peer.RedialAttempt is { } attempt)
        {
            // The outage is over (by the redial's dial or by the peer's): a dial in flight stops, the redial adopts THE link.
            peer.RedialAttempt = null;
            MeshLink.CancelSoon(attempt);
        }

        return raised;
    }

    private static void FlushPending(MeshPeer peer, MeshLink link)
    {
        while (peer.Pending.TryDequeue(out var pending))
        {
            link.Enqueue(pending);
        }
    }

    private string DialerOf(MeshLink link) => link.Outgoing ? Id : link.RemoteId!;

    /// <summary>Removes a peer for good: closes its link, stops reconnecting, drops what waited for it. Caller holds the lock.</summary>
    private NodeEvent[] ForgetLocked(MeshPeer peer, Exception? reason)
    {
        _peers.Remove(peer.Id);
        StopRedialLocked(peer);
        var dropped = peer.Bus.Buffer.Count + peer.Pending.Count;
        peer.Bus.Buffer.Clear();
        peer.Pending.Clear();
        var raised = new List<NodeEvent>(2);
        if (peer.Link is { } link)
        {
            peer.Link = null;
            link.Superseded = true; // its end is accounted for here
            link.CloseAfter(Wire.Goodbye("disconnected"u8), null);
            raised.Add(new NodeEvent(NodeEventKind.Disconnect) { PeerId = peer.Id, Error = reason });
        }

        raised.Add(new NodeEvent(NodeEventKind.PeerGone) { PeerId = peer.Id, Count = dropped, Error = reason });
        return [.. raised];
    }
}
