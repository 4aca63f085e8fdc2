using System.Diagnostics;
using System.Globalization;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// A value (typically a <see cref="System.Reactive.Notification{T}"/>) together with the virtual time at which it was recorded.
/// </summary>
/// <typeparam name="T">Type of the recorded value.</typeparam>
[DebuggerDisplay("{Value}@{Time}")]
[Serializable]
public readonly struct Recorded<T> : IEquatable<Recorded<T>>
{
    private readonly long _time;
    private readonly T _value;

    /// <summary>Creates a recorded value.</summary>
    /// <param name="time">Virtual time the value was produced at.</param>
    /// <param name="value">The recorded value.</param>
    public Recorded(long time, T value)
    {
        _time = time;
        _value = value;
    }

    /// <summary>Gets the virtual time the value was produced at.</summary>
    public long Time => _time;

    /// <summary>Gets the recorded value.</summary>
    public T Value => _value;

    /// <summary>Two recorded values are equal when their times are equal and their values are equal (compared from this instance's value).</summary>
    public bool Equals(Recorded<T> other) =>
        Time == other.Time && EqualityComparer<T>.Default.Equals(Value, other.Value);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Recorded<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() =>
        unchecked(Time.GetHashCode() * 397 ^ (Value is null ? 0 : EqualityComparer<T>.Default.GetHashCode(Value)));

    /// <summary>Equality operator.</summary>
    public static bool operator ==(Recorded<T> left, Recorded<T> right) => left.Equals(right);

    /// <summary>Inequality operator.</summary>
    public static bool operator !=(Recorded<T> left, Recorded<T> right) => !left.Equals(right);

    /// <summary>Formats as <c>Value@Time</c>.</summary>
    public override string ToString() => string.Format(CultureInfo.CurrentCulture, "{0}@{1}", Value, Time);
}
