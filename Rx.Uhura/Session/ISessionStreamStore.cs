namespace Rx.Uhura.Session;

/// <summary>
/// An optional capability of an <see cref="ISessionStore"/>: it also keeps the native protocol's resume state of a
/// session (<see cref="SessionStreamState"/>: the sequence positions and the events sent but not acknowledged), so a
/// client resumes its streams without loss on a restarted server, or on another server sharing the store.
/// </summary>
/// <remarks>
/// A server saves the state when a session's link ends (and again when more events wait for the client), and when it
/// closes; it takes the state back when the client resumes. Saving replaces what was stored; taking removes it, so one
/// state is resumed by at most one server. <see cref="ISessionStore.DestroyAsync"/> forgets it with the session.
/// </remarks>
public interface ISessionStreamStore
{
    /// <summary>Stores the resume state of a session, replacing any stored before.</summary>
    ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default);

    /// <summary>Removes and returns the stored resume state of a session, or <see langword="null"/> when none is stored.</summary>
    ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default);
}
