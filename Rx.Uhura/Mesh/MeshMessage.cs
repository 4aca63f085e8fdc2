using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Mesh;

/// <summary>A packet a peer sent to this node directly (masterless's <c>message(sender, packet)</c>).</summary>
public sealed class MeshMessage
{
    private readonly JsonSerializer _serializer;

    internal MeshMessage(string senderId, JToken packet, JsonSerializer serializer)
    {
        SenderId = senderId;
        Packet = packet;
        _serializer = serializer;
    }

    /// <summary>The id of the node that sent the packet.</summary>
    public string SenderId { get; }

    /// <summary>The packet: a JSON object (a Node masterless peer may also send scalars).</summary>
    public JToken Packet { get; }

    /// <summary>The packet converted to <typeparamref name="T"/> with the node's serializer settings.</summary>
    public T? PacketAs<T>() => Packet.ToObject<T>(_serializer);

    /// <inheritdoc/>
    public override string ToString() => $"{SenderId}: {Packet.ToString(Formatting.None)}";
}
