namespace Rx.Uhura.Session;

/// <summary>
/// The server side of a session's native-protocol streams, as a durable store keeps it between links
/// (<see cref="ISessionStreamStore"/>).
/// </summary>
/// <param name="LastSent">The last sequence number the server gave an outgoing event (0 = none).</param>
/// <param name="LastReceived">The last sequence number the server received and delivered (0 = none).</param>
/// <param name="Held">The events sent (or queued) and not yet acknowledged, in the order they are to be resent.</param>
/// <param name="Writer">An opaque token naming the server instance and save that wrote the state; stores keep it as it is.</param>
public sealed record SessionStreamState(long LastSent, long LastReceived, IReadOnlyList<HeldEvent> Held, string Writer);

/// <summary>One event waiting for the client's acknowledgement.</summary>
/// <param name="Seq">Its sequence number, or 0 when it was never written (it gets the next number when resent).</param>
/// <param name="Payload">The encoded event: the UTF-8 JSON array <c>["name", arg, ...]</c>.</param>
public readonly record struct HeldEvent(long Seq, ReadOnlyMemory<byte> Payload);
