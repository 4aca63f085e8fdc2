namespace Rx.Uhura.Scaleout;

/// <summary>
/// One message between servers on an <see cref="IUhuraBackplane"/>. An event (<see cref="BackplaneMessageKind.Broadcast"/>,
/// <see cref="BackplaneMessageKind.ToClient"/>) carries the event exactly as it was encoded once by the sending server,
/// <c>["name",arg1,...]</c> in UTF-8 JSON; the receiving servers write those same bytes to their clients.
/// </summary>
public sealed class BackplaneMessage
{
    /// <summary>Creates a message.</summary>
    /// <param name="kind">What the message asks or answers.</param>
    /// <param name="origin">The <see cref="UhuraServer.ServerId"/> of the server that publishes it.</param>
    /// <param name="target">For a reply, the server id it answers; otherwise null (every server).</param>
    /// <param name="clientId">For <see cref="BackplaneMessageKind.ToClient"/> and its replies, the client id; otherwise null.</param>
    /// <param name="correlationId">For <see cref="BackplaneMessageKind.ToClient"/> and its replies, the number that pairs them (unique per origin); otherwise 0.</param>
    /// <param name="payload">The encoded event (<c>["name",args...]</c>); for <see cref="BackplaneMessageKind.Failed"/>, the error; otherwise empty.</param>
    public BackplaneMessage(BackplaneMessageKind kind, string origin, string? target, string? clientId, long correlationId, ReadOnlyMemory<byte> payload)
    {
        ArgumentException.ThrowIfNullOrEmpty(origin);
        Kind = kind;
        Origin = origin;
        Target = target;
        ClientId = clientId;
        CorrelationId = correlationId;
        Payload = payload;
    }

    /// <summary>What the message asks or answers.</summary>
    public BackplaneMessageKind Kind { get; }

    /// <summary>The <see cref="UhuraServer.ServerId"/> of the server that published it.</summary>
    public string Origin { get; }

    /// <summary>For a reply, the server id it answers; null = for every server.</summary>
    public string? Target { get; }

    /// <summary>The client a <see cref="BackplaneMessageKind.ToClient"/> message (or its reply) is about; null otherwise.</summary>
    public string? ClientId { get; }

    /// <summary>Pairs a <see cref="BackplaneMessageKind.ToClient"/> with its replies; 0 otherwise.</summary>
    public long CorrelationId { get; }

    /// <summary>The encoded event <c>["name",args...]</c> (UTF-8 JSON), the error of a <see cref="BackplaneMessageKind.Failed"/>, or empty.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} from {Origin}{(Target is null ? "" : " to " + Target)}{(ClientId is null ? "" : " for client " + ClientId)} #{CorrelationId} ({Payload.Length} bytes)";
}
