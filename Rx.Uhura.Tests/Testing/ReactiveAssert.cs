using System.Globalization;
using System.Reactive.Linq;
using System.Text;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// Assertions for tests of Rx code. Failures throw an exception whose message lists expected vs actual elements.
/// Independent of any unit test framework.
/// </summary>
public static class ReactiveAssert
{
    /// <summary>Asserts both sequences have the same length and pairwise equal elements (compared as <c>expected.Equals(actual)</c>).</summary>
    /// <param name="expected">Expected sequence.</param>
    /// <param name="actual">Actual sequence.</param>
    public static void AreElementsEqual<T>(IEnumerable<T> expected, IEnumerable<T> actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);

        var e = expected.ToList();
        var a = actual.ToList();
        if (!e.SequenceEqual(a))
        {
            Fail(Describe(e, a));
        }
    }

    /// <summary>Asserts both sequences are element-wise equal; on failure <paramref name="message"/> precedes the listing.</summary>
    /// <param name="expected">Expected sequence.</param>
    /// <param name="actual">Actual sequence.</param>
    /// <param name="message">Message for the failure.</param>
    public static void AreElementsEqual<T>(IEnumerable<T> expected, IEnumerable<T> actual, string message)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);

        var e = expected.ToList();
        var a = actual.ToList();
        if (!e.SequenceEqual(a))
        {
            Fail(message + Describe(e, a));
        }
    }

    /// <summary>Asserts both observable sequences produce equal notifications (blocks until both terminate).</summary>
    /// <param name="expected">Expected sequence.</param>
    /// <param name="actual">Actual sequence.</param>
    public static void AreElementsEqual<T>(IObservable<T> expected, IObservable<T> actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        AreElementsEqual(expected.Materialize().ToEnumerable(), actual.Materialize().ToEnumerable());
    }

    /// <summary>Asserts both observable sequences produce equal notifications (blocks until both terminate).</summary>
    /// <param name="expected">Expected sequence.</param>
    /// <param name="actual">Actual sequence.</param>
    /// <param name="message">Message for the failure.</param>
    public static void AreElementsEqual<T>(IObservable<T> expected, IObservable<T> actual, string message)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        AreElementsEqual(expected.Materialize().ToEnumerable(), actual.Materialize().ToEnumerable(), message);
    }

    /// <summary>Asserts <paramref name="action"/> throws <typeparamref name="TException"/> or a subtype.</summary>
    /// <param name="action">Action to run.</param>
    public static void Throws<TException>(Action action)
        where TException : Exception
    {
        ArgumentNullException.ThrowIfNull(action);

        try
        {
            action();
        }
        catch (TException)
        {
            return;
        }
        catch (Exception ex)
        {
            Fail(string.Format(CultureInfo.CurrentCulture, "Expected {0} but {1} was thrown.{2}{2}Stack trace:{2}{3}",
                typeof(TException).Name, ex.GetType().Name, Environment.NewLine, ex.StackTrace));
        }

        Fail(string.Format(CultureInfo.CurrentCulture, "Expected {0} but nothing was thrown.", typeof(TException).Name));
    }

    /// <summary>Asserts <paramref name="action"/> throws <typeparamref name="TException"/> or a subtype; fails with <paramref name="message"/>.</summary>
    /// <param name="action">Action to run.</param>
    /// <param name="message">Message for the failure.</param>
    public static void Throws<TException>(Action action, string message)
        where TException : Exception
    {
        ArgumentNullException.ThrowIfNull(action);

        try
        {
            action();
        }
        catch (TException)
        {
            return;
        }
        catch (Exception)
        {
            Fail(message);
        }

        Fail(message);
    }

    /// <summary>Asserts <paramref name="action"/> throws exactly the instance <paramref name="exception"/>.</summary>
    /// <param name="exception">The exception instance expected to be thrown.</param>
    /// <param name="action">Action to run.</param>
    public static void Throws<TException>(TException exception, Action action)
        where TException : Exception
    {
        ArgumentNullException.ThrowIfNull(action);

        try
        {
            action();
        }
        catch (TException ex)
        {
            if (!ReferenceEquals(exception, ex))
            {
                Fail(string.Format(CultureInfo.CurrentCulture, "Expected the given {0} instance but a different one was thrown: {1}",
                    typeof(TException).Name, ex.Message));
            }

            return;
        }
        catch (Exception ex)
        {
            Fail(string.Format(CultureInfo.CurrentCulture, "Expected {0} but {1} was thrown.{2}{2}Stack trace:{2}{3}",
                typeof(TException).Name, ex.GetType().Name, Environment.NewLine, ex.StackTrace));
        }

        Fail(string.Format(CultureInfo.CurrentCulture, "Expected {0} but nothing was thrown.", typeof(TException).Name));
    }

    /// <summary>Asserts <paramref name="action"/> throws exactly the instance <paramref name="exception"/>; fails with <paramref name="message"/>.</summary>
    /// <param name="exception">The exception instance expected to be thrown.</param>
    /// <param name="action">Action to run.</param>
    /// <param name="message">Message for the failure.</param>
    public static void Throws<TException>(TException exception, Action action, string message)
        where TException : Exception
    {
        ArgumentNullException.ThrowIfNull(action);

        try
        {
            action();
        }
        catch (TException ex)
        {
            if (!ReferenceEquals(exception, ex))
            {
                Fail(message);
            }

            return;
        }
        catch (Exception)
        {
            Fail(message);
        }

        Fail(message);
    }

    /// <summary>Asserts <paramref name="actual"/> equals <paramref name="expected"/> element-wise.</summary>
    /// <param name="actual">Actual sequence (e.g. <c>observer.Messages</c>).</param>
    /// <param name="expected">Expected sequence.</param>
    public static void AssertEqual<T>(this IEnumerable<T> actual, IEnumerable<T> expected)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        AreElementsEqual(expected, actual);
    }

    /// <summary>Asserts <paramref name="actual"/> consists of exactly the <paramref name="expected"/> elements.</summary>
    /// <param name="actual">Actual sequence (e.g. <c>observer.Messages</c>).</param>
    /// <param name="expected">Expected elements.</param>
    public static void AssertEqual<T>(this IEnumerable<T> actual, params T[] expected)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        AreElementsEqual(expected, actual);
    }

    /// <summary>Asserts both observable sequences produce equal notifications (blocks until both terminate).</summary>
    /// <param name="actual">Actual sequence.</param>
    /// <param name="expected">Expected sequence.</param>
    public static void AssertEqual<T>(this IObservable<T> actual, IObservable<T> expected)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        AreElementsEqual(expected, actual);
    }

    private static string Describe<T>(IEnumerable<T> expected, IEnumerable<T> actual)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.Append("Expected: [").AppendJoin(", ", expected).Append(']').AppendLine();
        sb.Append("Actual..: [").AppendJoin(", ", actual).Append(']').AppendLine();
        return sb.ToString();
    }

    private static void Fail(string message) => throw new ReactiveAssertException(message);
}
