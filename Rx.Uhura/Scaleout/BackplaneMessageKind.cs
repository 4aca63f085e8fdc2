namespace Rx.Uhura.Scaleout;

/// <summary>What a <see cref="BackplaneMessage"/> asks or answers.</summary>
public enum BackplaneMessageKind
{
    /// <summary>An event for every client of every other server (<see cref="UhuraServer.Broadcast"/>).</summary>
    Broadcast = 0,

    /// <summary>An event for the client <see cref="BackplaneMessage.ClientId"/>, wherever it is connected (<see cref="UhuraServer.SendTo"/>).</summary>
    ToClient = 1,

    /// <summary>Reply to a <see cref="ToClient"/>: the server that has the client queued the event; the outcome follows.</summary>
    Accepted = 2,

    /// <summary>Reply to a <see cref="ToClient"/>: the client acknowledged the event.</summary>
    Delivered = 3,

    /// <summary>Reply to a <see cref="ToClient"/>: the event could not be delivered; the payload is the error (<c>Type\nmessage</c>, UTF-8).</summary>
    Failed = 4,
}
