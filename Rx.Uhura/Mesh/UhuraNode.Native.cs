using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh.Internal;

namespace Rx.Uhura.Mesh;

/// <summary>The native mesh wire: handshake with an arbiter, keep flags, heartbeats, packets.</summary>
public sealed partial class UhuraNode
{
    private const int NativeVersion = 1;

    /// <summary>
    /// Of two nodes, the one with the ordinally smaller id arbitrates: it alone decides which connection between them
    /// is THE link, so simultaneous dials cannot both win.
    /// </summary>
    private bool IsArbiterFor(string remoteId) => string.CompareOrdinal(Id, remoteId) < 0;

    /// <summary>Handles one native frame from <paramref name="link"/>; false ends the link's reading.</summary>
    internal bool OnNativeFrame(MeshLink link, MeshFrame frame)
    {
        if (link.Phase == LinkPhase.Handshaking)
        {
            return OnNativeHandshake(link, frame);
        }

        if (frame.Type is MeshFrameType.Ping or MeshFrameType.Packet or MeshFrameType.Bus or MeshFrameType.Ack)
        {
            link.MadeProgress = true; // the peer keeps talking: a redial after this link's end starts a new outage
        }

        switch (frame.Type)
        {
            case MeshFrameType.Ping:
                return true;
            case MeshFrameType.Packet:
                Deliver(new MeshMessage(link.RemoteId!, frame.Json!, _serializer));
                return true;
            case MeshFrameType.Keep:
                OnRemoteKeep(link, frame.Flag);
                return true;
            case MeshFrameType.Sync:
                OnSync(link, frame.Number); // the flag (a reconnection, as the peer sees it) is informational
                return true;
            case MeshFrameType.Bus:
                OnBus(link, frame.Number, (JObject)frame.Json!);
                return true;
            case MeshFrameType.Ack:
                OnAck(link, frame.Number);
                return true;
            case MeshFrameType.Close:
                link.CloseAfter(null, null);
                return false;
            default:
                throw new ProtocolException($"A {frame.Type} frame after the handshake.");
        }
    }

    private bool OnNativeHandshake(MeshLink link, MeshFrame frame) => HandshakeStep(link, frame, NativeHandshakeLocked);

    private bool NativeHandshakeLocked(MeshLink link, MeshFrame frame, List<NodeEvent> raised)
    {
        switch (frame.Type, link.Outgoing, link.HandshakeStep)
        {
            case (MeshFrameType.Refuse, _, _):
                var refusal = ParseRefusal((JObject)frame.Json!, link.RemoteId);
                link.Handshake.TrySetException(refusal);
                link.CloseAfter(null, refusal);
                raised.Add(new NodeEvent(NodeEventKind.Refused) { PeerId = link.RemoteId, Error = refusal });
                return false;

            case (MeshFrameType.Hello, false, 0):
                return OnHello(link, (JObject)frame.Json!, raised);

            case (MeshFrameType.Welcome, true, 0):
                return OnWelcome(link, (JObject)frame.Json!, raised);

            case (MeshFrameType.Claim, false, 1) when IsArbiterFor(link.RemoteId!):
                return Arbitrate(link, ReadUInt64(frame.Json!, "lost"), raised);

            case (MeshFrameType.Confirm, _, 1) when !IsArbiterFor(link.RemoteId!):
                var linkId = ReadUInt64(frame.Json!, "link");
                if (_peers.TryGetValue(link.RemoteId!, out var peer) && peer.Link is { } current && current.LinkId > linkId)
                {
                    // A confirmation overtaken by a newer one: this connection is already obsolete.
                    Refuse(link, PeerRefusal.Duplicate, "A newer link to this node exists.", raised, notify: false);
                    return false;
                }

                link.LinkId = linkId;
                EstablishLocked(link, raised);
                return true;

            default:
                throw new ProtocolException($"Unexpected {frame.Type} frame at step {link.HandshakeStep} of the mesh handshake.");
        }
    }

    /// <summary>Runs one handshake step under the lock (a closing node ends the link instead) and raises its events after.</summary>
    private bool HandshakeStep<T>(MeshLink link, T input, Func<MeshLink, T, List<NodeEvent>, bool> step)
    {
        var raised = new List<NodeEvent>();
        try
        {
            lock (_gate)
            {
                if (_closed)
                {
                    link.CloseAfter(null, null);
                    return false;
                }

                return step(link, input, raised);
            }
        }
        finally
        {
            Raise(raised);
        }
    }

    private bool OnHello(MeshLink link, JObject hello, List<NodeEvent> raised)
    {
        if (ReadUInt64(hello, "v") != NativeVersion)
        {
            Refuse(link, PeerRefusal.Protocol, $"Mesh protocol version {hello["v"]} is not supported (this node speaks {NativeVersion}).", raised);
            return false;
        }

        var id = ReadString(hello, "id");
        link.RemoteInfo = hello["info"] is { Type: JTokenType.String } info ? (string?)info : null;
        link.RemoteIncarnation = ReadString(hello, "inc");
        if (!Admit(link, id, ReadString(hello, "channel"), raised))
        {
            return false;
        }

        _lostLinks.TryGetValue(id, out var lost);
        link.Enqueue(NativeMeshCodec.Frame(MeshFrameType.Welcome, new JObject { ["id"] = Id, ["channel"] = Options.Channel, ["inc"] = _incarnation, ["lost"] = lost }));
        link.HandshakeStep = 1;
        return true;
    }

    private bool OnWelcome(MeshLink link, JObject welcome, List<NodeEvent> raised)
    {
        var id = ReadString(welcome, "id");
        link.RemoteId = id; // known from here on, also when it is refused as unexpected
        link.RemoteIncarnation = ReadString(welcome, "inc");
        if (link.ExpectedId is { } expected && expected != id)
        {
            Refuse(link, PeerRefusal.UnexpectedNode, $"Expected node {expected} at {link.DialedUri}, found {id}.", raised);
            return false;
        }

        if (!Admit(link, id, ReadString(welcome, "channel"), raised))
        {
            return false;
        }

        link.HandshakeStep = 1;
        if (IsArbiterFor(id))
        {
            return Arbitrate(link, ReadUInt64(welcome, "lost"), raised);
        }

        _lostLinks.TryGetValue(id, out var lost);
        link.Enqueue(NativeMeshCodec.Frame(MeshFrameType.Claim, new JObject { ["lost"] = lost }));
        return true;
    }

    /// <summary>Checks an identified remote (itself? same channel? room for it?); refuses the link when it fails.</summary>
    private bool Admit(MeshLink link, string id, string channel, List<NodeEvent> raised)
    {
        link.RemoteId = id;
        if (id == Id)
        {
            Refuse(link, PeerRefusal.Self, "A node cannot connect to itself.", raised);
            return false;
        }

        if (channel != Options.Channel)
        {
            Refuse(link, PeerRefusal.ChannelMismatch, $"Node {id} is on channel '{channel}', this node on '{Options.Channel}'.", raised);
            return false;
        }

        if (!_peers.ContainsKey(id) && _peers.Count >= Options.MaxPeers)
        {
            Refuse(link, PeerRefusal.Full, $"Node {Id} has {Options.MaxPeers} peers already (MaxPeers).", raised);
            return false;
        }

        raised.Add(new NodeEvent(NodeEventKind.PeerId) { PeerId = id });
        return true;
    }

    /// <summary>
    /// The arbiter's decision on a link: it becomes THE link unless one exists that the remote still believes in.
    /// <paramref name="remoteLost"/> is the id of the last link the remote lost to this node: when that is the current
    /// link, it is half-dead (the remote saw it end) and the new one replaces it.
    /// </summary>
    private bool Arbitrate(MeshLink link, ulong remoteLost, List<NodeEvent> raised)
    {
        var id = link.RemoteId!;
        if (_peers.TryGetValue(id, out var peer) && peer.Link is { } current && current != link && (remoteLost == 0 || remoteLost != current.LinkId))
        {
            Refuse(link, PeerRefusal.Duplicate, $"Nodes {Id} and {id} are already connected.", raised, notify: false);
            return false;
        }

        link.LinkId = ++_nextLinkId;
        link.Enqueue(NativeMeshCodec.Frame(MeshFrameType.Confirm, new JObject { ["link"] = link.LinkId }));
        EstablishLocked(link, raised);
        return true;
    }

    /// <summary>Sends a refusal, ends the link and fails its handshake. A duplicate is not reported as a refusal: it is de-duplication at work.</summary>
    private void Refuse(MeshLink link, PeerRefusal reason, string message, List<NodeEvent> raised, bool notify = true)
    {
        var error = new PeerRefusedException(reason, message, link.RemoteId);
        link.Handshake.TrySetException(error);
        link.CloseAfter(NativeMeshCodec.Frame(MeshFrameType.Refuse, new JObject { ["code"] = RefusalCodes[(int)reason], ["reason"] = message }), error);
        if (notify)
        {
            raised.Add(new NodeEvent(NodeEventKind.Refused) { PeerId = link.RemoteId, Error = error });
        }
    }

    private static readonly string[] RefusalCodes = ["duplicate", "channel", "self", "full", "unexpected", "protocol", "timeout"];

    private static PeerRefusedException ParseRefusal(JObject refuse, string? peerId)
    {
        var code = refuse["code"]?.Type == JTokenType.String ? (string)refuse["code"]! : "protocol";
        var index = Array.IndexOf(RefusalCodes, code);
        var reason = refuse["reason"]?.Type == JTokenType.String ? (string)refuse["reason"]! : code;
        return new PeerRefusedException(index < 0 ? PeerRefusal.Protocol : (PeerRefusal)index, "The peer refused the connection: " + reason, peerId);
    }

    private void OnRemoteKeep(MeshLink link, bool keep)
    {
        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (_peers.TryGetValue(link.RemoteId!, out var peer) && peer.Link == link)
            {
                peer.KeepRemote = keep;
                if (!keep && !peer.KeepLocal)
                {
                    raised = ForgetLocked(peer, null);
                }
            }
        }

        Raise(raised);
    }

    private static string ReadString(JToken json, string name)
        => json[name] is { Type: JTokenType.String } value && ((string)value!).Length > 0
            ? (string)value!
            : throw new ProtocolException($"A mesh handshake frame needs a non-empty string \"{name}\".");

    private static ulong ReadUInt64(JToken json, string name)
        => json[name] is { Type: JTokenType.Integer } value && value.ToObject<decimal>() is >= 0 and <= ulong.MaxValue
            ? value.ToObject<ulong>()
            : throw new ProtocolException($"A mesh handshake frame needs a non-negative integer \"{name}\".");
}
