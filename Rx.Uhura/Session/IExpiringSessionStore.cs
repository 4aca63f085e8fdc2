namespace Rx.Uhura.Session;

/// <summary>
/// An <see cref="ISessionStore"/> that forgets sessions by itself, some time after their last save. A server whose own
/// <see cref="UhuraServerOptions.SessionTimeToLive"/> ends for a session then only forgets what it holds in memory and
/// leaves the stored session to the store's expiry: with a store shared by several servers, the client may have
/// resumed on another server in the meantime.
/// </summary>
public interface IExpiringSessionStore
{
    /// <summary>How long a session lives after its last save; null = until destroyed (the server destroys it then).</summary>
    TimeSpan? TimeToLive { get; }
}
