using System.Diagnostics;
using System.Globalization;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// Records the virtual times at which an observer subscribed to and unsubscribed from a testable observable.
/// </summary>
[DebuggerDisplay("({Subscribe}, {Unsubscribe})")]
[Serializable]
public readonly struct Subscription : IEquatable<Subscription>
{
    /// <summary>Unsubscribe value for a subscription that has not been disposed.</summary>
    public const long Infinite = long.MaxValue;

    private readonly long _subscribe;
    private readonly long _unsubscribe;

    /// <summary>Creates a subscription that has not (yet) been disposed.</summary>
    /// <param name="subscribe">Virtual time of subscription.</param>
    public Subscription(long subscribe)
    {
        _subscribe = subscribe;
        _unsubscribe = Infinite;
    }

    /// <summary>Creates a subscription with a subscribe and an unsubscribe time.</summary>
    /// <param name="subscribe">Virtual time of subscription.</param>
    /// <param name="unsubscribe">Virtual time of unsubscription.</param>
    public Subscription(long subscribe, long unsubscribe)
    {
        _subscribe = subscribe;
        _unsubscribe = unsubscribe;
    }

    /// <summary>Gets the virtual time of subscription.</summary>
    public long Subscribe => _subscribe;

    /// <summary>Gets the virtual time of unsubscription (<see cref="Infinite"/> when still subscribed).</summary>
    public long Unsubscribe => _unsubscribe;

    /// <summary>Two subscriptions are equal when both times are equal.</summary>
    public bool Equals(Subscription other) => Subscribe == other.Subscribe && Unsubscribe == other.Unsubscribe;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Subscription other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => unchecked(Subscribe.GetHashCode() * 397 ^ Unsubscribe.GetHashCode());

    /// <summary>Equality operator.</summary>
    public static bool operator ==(Subscription left, Subscription right) => left.Equals(right);

    /// <summary>Inequality operator.</summary>
    public static bool operator !=(Subscription left, Subscription right) => !left.Equals(right);

    /// <summary>Formats as <c>(subscribe, unsubscribe)</c>, with <c>Infinite</c> for an open subscription.</summary>
    public override string ToString() =>
        Unsubscribe == Infinite
            ? string.Format(CultureInfo.CurrentCulture, "({0}, Infinite)", Subscribe)
            : string.Format(CultureInfo.CurrentCulture, "({0}, {1})", Subscribe, Unsubscribe);
}
