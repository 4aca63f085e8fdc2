using System.Text;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Mesh;

/// <summary>The event bus (verbose's semantics) over native links.</summary>
public sealed partial class UhuraNode
{
    /// <summary>
    /// What a native mesh reader takes past <see cref="UhuraNodeOptions.MaxPacketSize"/> (frame length, type byte
    /// included): the room a bus event's path may grow by as it is forwarded.
    /// </summary>
    internal const int ForwardSlack = 64;

    /// <summary>Most out-of-order bus events remembered per origin for de-duplication.</summary>
    private const int OriginWindowCapacity = 65_536;

    private readonly Dictionary<string, OriginWindow> _seen = new(StringComparer.Ordinal);
    private ulong _busSeq;

    /// <summary>
    /// Emits an event on the bus: every other node of the graph receives it exactly once on its <see cref="Events"/>,
    /// whatever the topology. It is buffered per peer until acknowledged (up to <see cref="UhuraNodeOptions.BufferMax"/>
    /// events and <see cref="UhuraNodeOptions.BufferTimeout"/>), so a peer that is down receives it when it is back.
    /// </summary>
    /// <param name="eventName">The event name.</param>
    /// <param name="args">The arguments (anything the serializer can write).</param>
    /// <exception cref="NotSupportedException">The node speaks <see cref="MeshProtocol.Masterless"/>, which has no bus.</exception>
    /// <exception cref="ObjectDisposedException">The node was closed (<see cref="CloseAsync"/>).</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized (a reference loop, a task, nesting deeper than <see cref="UhuraNodeOptions.MaxJsonDepth"/> allows inside a bus frame).</exception>
    /// <exception cref="FrameTooLargeException">The encoded event is over <see cref="UhuraNodeOptions.MaxPacketSize"/> (nothing was sent or buffered).</exception>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is null or empty.</exception>
    public void Emit(string eventName, params ReadOnlySpan<object?> args)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        if (Protocol != MeshProtocol.Native)
        {
            throw new NotSupportedException("The masterless wire has no event bus: use MeshProtocol.Native to Emit.");
        }

        var array = new JArray();
        try
        {
            foreach (var arg in args)
            {
                // A bus body is {"a":[args...], ...}: an argument may nest two levels less than a frame.
                array.Add(UhuraJson.ToToken(arg, _serializer, Math.Max(1, Options.MaxJsonDepth - 2)));
            }
        }
        catch (JsonException ex)
        {
            throw new EncodeException(eventName, ex);
        }

        var raised = new List<NodeEvent>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            var body = BusBody(Id, _incarnation, _busSeq + 1, [Id], eventName, array);
            if (body.Length > Options.MaxPacketSize)
            {
                // Sent, it would make every peer drop its link, and be resent on every redialled one: refused here.
                throw new FrameTooLargeException(Options.MaxPacketSize, $"The bus event '{eventName}' encodes to {body.Length} bytes, over MaxPacketSize ({Options.MaxPacketSize} bytes): nothing was sent.");
            }

            _busSeq++;
            foreach (var peer in _peers.Values)
            {
                BusSendLocked(peer, body, raised);
            }
        }

        Raise(raised);
    }

    private static byte[] BusBody(string origin, string incarnation, ulong seq, IEnumerable<string> path, string name, JArray args)
    {
        var json = new JObject
        {
            ["o"] = origin,
            ["n"] = incarnation,
            ["s"] = seq,
            ["p"] = new JArray(path),
            ["e"] = name,
            ["a"] = args,
        };
        return Encoding.UTF8.GetBytes(json.ToString(Formatting.None));
    }

    /// <summary>Buffers an event for a peer and writes it when the peer's link is synchronized. Caller holds the lock and raises <paramref name="raised"/> after it.</summary>
    private void BusSendLocked(MeshPeer peer, byte[] body, List<NodeEvent> raised)
    {
        var bus = peer.Bus;
        var now = Time.GetTimestamp();
        if (bus.Buffer.Count >= Options.BufferMax)
        {
            var dropped = bus.Buffer.Dequeue();
            raised.Add(new NodeEvent(NodeEventKind.BufferOverflow) { PeerId = peer.Id, Sequence = dropped.Seq, Count = 1 });
        }

        var entry = new BusEntry(++bus.LastSent, body, now);
        bus.Buffer.Enqueue(entry);
        if (peer.Link is { Phase: LinkPhase.Stable, BusInitialized: true } link)
        {
            link.Enqueue(new OutFrame(NativeMeshCodec.BusHead(entry.Seq, body.Length), body));
            if (bus.AckWaitStart is null)
            {
                bus.AckWaitStart = now;
            }
        }
    }

    /// <summary>The peer says which of our events it has: resend the rest, then events flow on this link.</summary>
    private void OnSync(MeshLink link, ulong lastReceived)
    {
        NodeEvent[] raised;
        lock (_gate)
        {
            if (link.BusInitialized || !_peers.TryGetValue(link.RemoteId!, out var peer) || peer.Link != link)
            {
                throw new ProtocolException("A second Sync on a mesh link.");
            }

            var bus = peer.Bus;
            if (lastReceived > bus.LastSent)
            {
                throw new ProtocolException($"The peer claims bus event {lastReceived}; only {bus.LastSent} were sent.");
            }

            while (bus.Buffer.TryPeek(out var acked) && acked.Seq <= lastReceived)
            {
                bus.Buffer.Dequeue();
            }

            foreach (var entry in bus.Buffer)
            {
                link.Enqueue(new OutFrame(NativeMeshCodec.BusHead(entry.Seq, entry.Body.Length), entry.Body));
            }

            bus.AckWaitStart = bus.Buffer.Count > 0 ? Time.GetTimestamp() : null;
            link.BusInitialized = true;
            raised = link.IsReconnect
                ? [new NodeEvent(NodeEventKind.Initialized) { PeerId = peer.Id, Info = peer.Address, IsReconnect = true }, new NodeEvent(NodeEventKind.Reconnect) { PeerId = peer.Id, Info = peer.Address }]
                : [new NodeEvent(NodeEventKind.Initialized) { PeerId = peer.Id, Info = peer.Address }];
        }

        Raise(raised);
    }

    /// <summary>
    /// A bus frame from <paramref name="link"/>: received now (duplicates of it are dropped from here on), forwarded to the
    /// other peers, and queued for the subscribers; it counts as delivered, and is acknowledged, only once they returned.
    /// </summary>
    private void OnBus(MeshLink link, ulong seq, JObject body)
    {
        if (OnBusLocked(link, seq, body) is { } tooLarge)
        {
            _logger.LogWarning(tooLarge, "Node {NodeId}: a bus event was not forwarded", Id);
            _errors.OnNext(tooLarge); // outside the node's lock: Errors subscribers are user code
        }
    }

    /// <summary>What <see cref="OnBus"/> does under the node's lock; returns the event it could not forward, if any.</summary>
    private FrameTooLargeException? OnBusLocked(MeshLink link, ulong seq, JObject body)
    {
        BusEvent? delivered = null;
        FrameTooLargeException? tooLarge = null;
        var raised = new List<NodeEvent>();
        lock (_gate)
        {
            if (!_peers.TryGetValue(link.RemoteId!, out var peer) || peer.Link != link)
            {
                return null;
            }

            if (seq <= peer.Bus.LastReceived)
            {
                return null; // a retransmission of something already received (delivered, or waiting in the dispatcher)
            }

            var origin = BusString(body, "o");
            var incarnation = BusString(body, "n");
            var name = BusString(body, "e");
            var originSeq = body["s"] is { Type: JTokenType.Integer } s ? s.ToObject<ulong>() : throw new ProtocolException("A bus event needs an integer \"s\".");
            if (body["p"] is not JArray pathArray || body["a"] is not JArray args || pathArray.Any(static p => p.Type != JTokenType.String))
            {
                throw new ProtocolException("A bus event needs a \"p\" array of node ids and an \"a\" array of arguments.");
            }

            var bus = peer.Bus;
            bus.LastReceived = seq; // only once the frame is valid: a malformed one ends the link and is neither received nor acknowledged
            var path = pathArray.Select(static p => (string)p!).ToArray();
            if (origin != Id && !path.Contains(Id, StringComparer.Ordinal) && FirstTimeLocked(origin, incarnation, originSeq)) // else a loop back to us, or seen
            {
                delivered = new BusEvent(origin, name, args, path, _serializer);
                var forward = BusBody(origin, incarnation, originSeq, path.Append(Id), name, args);
                if (forward.Length + 1 > Options.MaxPacketSize + ForwardSlack)
                {
                    // The path grew it past what a peer reads (a peer with this node's options): forwarded, it would end
                    // that link and come back on every redialled one. Delivered here, not forwarded; reported.
                    tooLarge = new FrameTooLargeException(Options.MaxPacketSize + ForwardSlack, $"The bus event '{name}' of {origin} grew to {forward.Length} bytes with its path: delivered here, not forwarded.");
                }
                else
                {
                    foreach (var other in _peers.Values)
                    {
                        if (other != peer && !path.Contains(other.Id, StringComparer.Ordinal))
                        {
                            BusSendLocked(other, forward, raised);
                        }
                    }
                }
            }

            // Queued under the lock (it never blocks): a link that replaces this one cannot queue a later frame of the
            // peer before this one, whose delivery would then count this one as delivered too. Queued even when there
            // is nothing to deliver: the frame is acknowledged in its turn, after those before it.
            Raise(raised);
            Deliver(delivered, bus, bus.Epoch, seq);
        }

        return tooLarge;
    }

    /// <summary>Whether the event <paramref name="originSeq"/> of that origin (in that incarnation) is new to this node. Caller holds the lock.</summary>
    private bool FirstTimeLocked(string origin, string incarnation, ulong originSeq)
    {
        if (!_seen.TryGetValue(origin, out var window) || window.Incarnation != incarnation)
        {
            window = new OriginWindow(incarnation, OriginWindowCapacity);
            _seen[origin] = window;
        }

        return window.FirstTime(originSeq);
    }

    private void OnAck(MeshLink link, ulong seq)
    {
        NodeEvent? raised = null;
        lock (_gate)
        {
            if (!_peers.TryGetValue(link.RemoteId!, out var peer) || peer.Link != link)
            {
                return;
            }

            var bus = peer.Bus;
            if (seq > bus.LastSent)
            {
                throw new ProtocolException($"The peer acknowledged bus event {seq}; only {bus.LastSent} were sent.");
            }

            while (bus.Buffer.TryPeek(out var acked) && acked.Seq <= seq)
            {
                bus.Buffer.Dequeue();
            }

            bus.AckWaitStart = bus.Buffer.Count > 0 ? Time.GetTimestamp() : null;
            raised = new NodeEvent(NodeEventKind.Acknowledge) { PeerId = peer.Id, Sequence = seq };
        }

        Raise(raised);
    }

    /// <summary>Every <see cref="UhuraNodeOptions.AcknowledgeInterval"/>: acknowledgements out, expired events dropped, stuck links and abandoned peers ended.</summary>
    private void OnBusTick()
    {
        var raised = new List<NodeEvent>();
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            var now = Time.GetTimestamp();
            List<MeshPeer>? abandoned = null;
            foreach (var peer in _peers.Values)
            {
                var bus = peer.Bus;
                var link = peer.Link is { Phase: LinkPhase.Stable } stable ? stable : null;
                if (link is not null && bus.LastDelivered > bus.LastAckSent)
                {
                    // What the subscribers returned from, never merely what was read: an acknowledged event is one the
                    // peer may forget, so it must not be lost if this node closes or fails before its turn.
                    link.Enqueue(NativeMeshCodec.Number(MeshFrameType.Ack, bus.LastDelivered));
                    bus.LastAckSent = bus.LastDelivered;
                }

                var expired = 0;
                ulong last = 0;
                while (bus.Buffer.TryPeek(out var oldest) && Time.GetElapsedTime(oldest.QueuedAt, now) >= Options.BufferTimeout)
                {
                    bus.Buffer.Dequeue();
                    expired++;
                    last = oldest.Seq;
                }

                if (expired > 0)
                {
                    raised.Add(new NodeEvent(NodeEventKind.BufferExpired) { PeerId = peer.Id, Sequence = last, Count = expired });
                    if (bus.Buffer.Count == 0)
                    {
                        bus.AckWaitStart = null;
                    }
                }

                if (link is { BusInitialized: true } && bus.AckWaitStart is { } waitingSince && Options.InactivityTimeout != Timeout.InfiniteTimeSpan
                    && Time.GetElapsedTime(waitingSince, now) >= Options.InactivityTimeout)
                {
                    link.Abort(new PeerLostException($"Peer {peer.Id} acknowledged nothing for {Options.InactivityTimeout.TotalSeconds:0.###} s.", peer.Id));
                }

                if (peer.Link is null && peer.Redial is null && Time.GetElapsedTime(peer.LostAt, now) >= Options.BufferTimeout)
                {
                    (abandoned ??= []).Add(peer);
                }
            }

            foreach (var peer in abandoned ?? [])
            {
                raised.AddRange(ForgetLocked(peer, new PeerLostException($"Peer {peer.Id} did not come back within {Options.BufferTimeout.TotalMinutes:0.###} min.", peer.Id)));
            }
        }

        Raise(raised);
    }

    private static string BusString(JObject body, string name)
        => body[name] is { Type: JTokenType.String } value ? (string)value! : throw new ProtocolException($"A bus event needs a string \"{name}\".");
}
