namespace Rx.Uhura.Internal;

/// <summary>The range checks of the options' time spans, with the bound a .NET timer sets.</summary>
internal static class TimeoutChecks
{
    /// <summary>The longest single wait a timer (and <c>Task.WaitAsync</c>) accepts: 4,294,967,294 ms, about 49.7 days.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>
    /// Throws <see cref="ArgumentOutOfRangeException"/> (naming <paramref name="name"/>) unless <paramref name="value"/> is
    /// positive (or zero, with <paramref name="allowZero"/>) and at most <see cref="Max"/>, or
    /// <see cref="Timeout.InfiniteTimeSpan"/> with <paramref name="allowInfinite"/>.
    /// </summary>
    public static void Check(TimeSpan value, string name, bool allowZero = false, bool allowInfinite = false)
    {
        if (allowInfinite && value == Timeout.InfiniteTimeSpan)
        {
            return;
        }

        var or = allowInfinite ? " or Timeout.InfiniteTimeSpan" : string.Empty;
        if (value < TimeSpan.Zero || (value == TimeSpan.Zero && !allowZero))
        {
            throw new ArgumentOutOfRangeException(name, value, (allowZero ? "Must not be negative" : "Must be positive") + or + ".");
        }

        if (value > Max)
        {
            throw new ArgumentOutOfRangeException(name, value, $"Must be at most {Max} (the longest a timer waits){(allowInfinite ? "; Timeout.InfiniteTimeSpan means no limit" : string.Empty)}.");
        }
    }
}
