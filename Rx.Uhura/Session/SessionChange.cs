using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Session;

/// <summary>Which side made a session change.</summary>
public enum SessionChangeOrigin
{
    /// <summary>This process called <see cref="UhuraSession.Set(string, object?)"/>.</summary>
    Local,

    /// <summary>The peer set the key.</summary>
    Remote,
}

/// <summary>One key of the shared session changed. <see cref="Value"/> is <see langword="null"/> when the key was removed.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The new value, or <see langword="null"/> when removed.</param>
/// <param name="Origin">Which side changed it.</param>
public sealed record SessionChange(string Key, JToken? Value, SessionChangeOrigin Origin);
