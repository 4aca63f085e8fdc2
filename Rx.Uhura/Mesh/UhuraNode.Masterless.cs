using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Mesh;

/// <summary>The masterless wire (npm <c>masterless@0.4.1</c>), as measured in <c>interop/MASTERLESS-NOTES.md</c>.</summary>
public sealed partial class UhuraNode
{
    /// <summary>
    /// An extra key in the id packets (Node ignores it) by which two Rx.Uhura nodes know each other: between them,
    /// simultaneous connections that masterless's priorities both confirmed are settled the same way on both ends.
    /// </summary>
    internal const string UhuraMark = "uhura";

    /// <summary>Handles one masterless packet from <paramref name="link"/>; false ends the link's reading.</summary>
    internal bool OnMasterlessPacket(MeshLink link, JToken packet)
    {
        if (packet.Type == JTokenType.Null)
        {
            // A null packet ends the Node reader's stream: the link is over.
            link.CloseAfter(null, link.Phase == LinkPhase.Stable ? new PeerLostException("The peer ended the stream (a null packet).", link.RemoteId) : null);
            return false;
        }

        if (link.Phase == LinkPhase.Handshaking)
        {
            return OnMasterlessHandshake(link, packet);
        }

        if (packet.Type != JTokenType.Array)
        {
            link.MadeProgress = true; // a heartbeat or a packet (an array is a keep flag, sent once when the link is ready)
        }

        switch (packet.Type)
        {
            case JTokenType.Boolean when (bool)packet!:
                return true; // heartbeat
            case JTokenType.Array:
                OnRemoteKeep(link, packet is JArray { Count: > 0 } flags && JsonTruthiness.IsTruthy(flags[0]));
                return true;
            default:
                Deliver(new MeshMessage(link.RemoteId!, packet, _serializer));
                return true;
        }
    }

    private bool OnMasterlessHandshake(MeshLink link, JToken packet)
    {
        if (packet.Type == JTokenType.Boolean && (bool)packet!)
        {
            return true; // heartbeats are ignored during the handshake
        }

        return HandshakeStep(link, packet, (link, packet, raised) => (link.Outgoing, link.HandshakeStep) switch
        {
            (false, 0) => OnMasterlessId(link, packet, raised),
            (false, 1) => OnMasterlessPriority(link, packet, raised),
            (true, 0) => OnMasterlessAnswer(link, packet, raised),
            (true, 1) => OnMasterlessConfirm(link, packet, raised),
            _ => Drop(link, "an unexpected packet"),
        });
    }

    /// <summary>Incoming, first packet: <c>{"id","info"}</c>.</summary>
    private bool OnMasterlessId(MeshLink link, JToken packet, List<NodeEvent> raised)
    {
        if (packet is not JObject hello || !JsonTruthiness.IsTruthy(hello["id"]))
        {
            return Drop(link, "a handshake without an id");
        }

        var id = NodeIdOf(hello["id"]!);
        if (id == Id)
        {
            // Masterless closes with nothing sent; answering our id first lets our own dialling end see itself.
            link.Enqueue(MasterlessCodec.Encode(new JObject { ["id"] = Id }));
            return Drop(link, "a connection from itself", PeerRefusal.Self, id, raised);
        }

        if (hello["info"] is not { Type: JTokenType.String } info || !HasPort((string)info!))
        {
            return Drop(link, "an info that is not an address with a port");
        }

        if (_links.Any(l => l != link && l.RemoteId == id && !l.IsClosing))
        {
            return Drop(link, $"a second connection from {id}", PeerRefusal.Duplicate, id);
        }

        if (!_peers.ContainsKey(id) && _peers.Count >= Options.MaxPeers)
        {
            return Drop(link, $"more than {Options.MaxPeers} peers (MaxPeers)", PeerRefusal.Full, id, raised);
        }

        link.RemoteId = id;
        link.RemoteInfo = (string)info!;
        link.HandshakeStep = 1;
        raised.Add(new NodeEvent(NodeEventKind.PeerId) { PeerId = id });
        link.RemoteIsUhura = hello[UhuraMark] is not null;
        link.Enqueue(MasterlessCodec.Encode(new JObject { ["id"] = Id, [UhuraMark] = 1 }));
        return true;
    }

    /// <summary>Incoming, second packet: <c>{"priority":p}</c>; the incoming side decides.</summary>
    private bool OnMasterlessPriority(MeshLink link, JToken packet, List<NodeEvent> raised)
    {
        if (packet is not JObject { } obj || obj["priority"] is not { Type: JTokenType.Integer or JTokenType.Float } p)
        {
            return Drop(link, "a handshake without a numeric priority");
        }

        var id = link.RemoteId!;
        var priority = (double)p;
        if (_peers.TryGetValue(id, out var peer) && peer.Link is { Phase: LinkPhase.Stable })
        {
            return Drop(link, $"a duplicate connection from {id}", PeerRefusal.Duplicate, id);
        }

        var own = _links.FirstOrDefault(l => l != link && l.Outgoing && l.RemoteId == id && l.Phase == LinkPhase.Handshaking && l.Priority >= 0);
        if (own is not null && priority < own.Priority)
        {
            // Both nodes dialled: the connection whose dialler drew the larger priority survives.
            return Drop(link, $"the simultaneous connection from {id} (priority {priority} < {own.Priority})", PeerRefusal.Duplicate, id);
        }

        link.Enqueue(MasterlessCodec.Encode(new JObject { ["confirm"] = true }));
        EstablishLocked(link, raised);
        return true;
    }

    /// <summary>Outgoing, the answer <c>{"id"}</c>: sends the priority, or 0 to abort a duplicate.</summary>
    private bool OnMasterlessAnswer(MeshLink link, JToken packet, List<NodeEvent> raised)
    {
        if (packet is not JObject answer || !JsonTruthiness.IsTruthy(answer["id"]))
        {
            return Drop(link, "an answer without an id");
        }

        var id = NodeIdOf(answer["id"]!);
        link.RemoteId = id;
        link.RemoteIsUhura = answer[UhuraMark] is not null;
        if (id == Id)
        {
            return Drop(link, "a connection to itself", PeerRefusal.Self, id, raised);
        }

        if (link.ExpectedId is { } expected && expected != id)
        {
            link.Enqueue(MasterlessCodec.Encode(new JObject { ["priority"] = 0 }));
            return Drop(link, $"node {id} where {expected} was expected", PeerRefusal.UnexpectedNode, id, raised);
        }

        var stable = _peers.TryGetValue(id, out var peer) && peer.Link is { Phase: LinkPhase.Stable };
        if (stable || _links.Any(l => l != link && l.Outgoing && l.RemoteId == id && !l.IsClosing))
        {
            link.Enqueue(MasterlessCodec.Encode(new JObject { ["priority"] = 0 }));
            return Drop(link, $"a duplicate connection to {id}", PeerRefusal.Duplicate, id);
        }

        var incoming = _links.Any(l => l != link && !l.Outgoing && l.RemoteId == id && l.Phase == LinkPhase.Handshaking);
        link.Priority = incoming ? RandomPriority() : 1;
        link.HandshakeStep = 1;
        raised.Add(new NodeEvent(NodeEventKind.PeerId) { PeerId = id });
        link.Enqueue(MasterlessCodec.Encode(new JObject { ["priority"] = link.Priority }));
        return true;
    }

    /// <summary>Outgoing, <c>{"confirm":true}</c>: the link is up.</summary>
    private bool OnMasterlessConfirm(MeshLink link, JToken packet, List<NodeEvent> raised)
    {
        if (packet is not JObject confirm || confirm["confirm"] is not { Type: JTokenType.Boolean } flag || !(bool)flag!)
        {
            return Drop(link, "a handshake packet other than a confirmation");
        }

        EstablishLocked(link, raised);
        return true;
    }

    /// <summary>
    /// The id of the node an outgoing <paramref name="link"/> reached: the id it answered with or, when it closed the
    /// link before answering, the id of the node whose own connection to us announced the address we dialled. That is
    /// how a masterless node ends the later of two simultaneous dials: its own dial already had our answer, so it closes
    /// ours right after our id packet, with nothing sent (MASTERLESS-NOTES.md, "Incoming checks on the id packet"). Its
    /// connection to us survives; the address match relies on the peer announcing the same URI we dialled.
    /// </summary>
    private string? DialedNodeId(MeshLink link)
    {
        if (link.RemoteId is not null || Protocol != MeshProtocol.Masterless)
        {
            return link.RemoteId;
        }

        lock (_gate)
        {
            return _links.FirstOrDefault(l => l != link && !l.Outgoing && !l.IsClosing && l.RemoteId is not null
                && string.Equals(l.RemoteInfo, link.DialedUri, StringComparison.Ordinal))?.RemoteId;
        }
    }

    /// <summary>
    /// Ends a handshake the masterless way: FIN, nothing more sent (a priority 0, if queued, goes first). With
    /// <paramref name="raised"/>, a <see cref="NodeEventKind.Refused"/> event is raised, as the native wire does.
    /// </summary>
    private bool Drop(MeshLink link, string what, PeerRefusal reason = PeerRefusal.Protocol, string? peerId = null, List<NodeEvent>? raised = null)
    {
        var error = new PeerRefusedException(reason, $"Masterless handshake ended: {what}.", peerId ?? link.RemoteId);
        link.Handshake.TrySetException(error);
        link.CloseAfter(null, error);
        raised?.Add(new NodeEvent(NodeEventKind.Refused) { PeerId = error.PeerId, Error = error });
        return false;
    }

    /// <summary>A priority in (0, 1), never 0 (which aborts).</summary>
    private static double RandomPriority()
    {
        double value;
        do
        {
            value = Random.Shared.NextDouble();
        }
        while (value == 0);
        return value;
    }

    /// <summary>The map key masterless makes of an id: a string as is, anything else as JavaScript would print it.</summary>
    private static string NodeIdOf(JToken id) => id.Type == JTokenType.String ? (string)id! : id.ToString(Newtonsoft.Json.Formatting.None);

    private static bool HasPort(string info)
    {
        var colon = info.LastIndexOf(':');
        return colon > 0 && int.TryParse(info.AsSpan(colon + 1).TrimEnd('/'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port > 0;
    }
}
