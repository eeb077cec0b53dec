"""Instance, Resource and ApiClient leave the jobs app for core (see core 0001): model state only, no table changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('configs', '0002_resource_moves_to_core'),
        ('core', '0001_initial'),
        ('jobs', '0006_jobhistory_log_key'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='instance',
                    name='members',
                ),
                migrations.AlterField(
                    model_name='scheduledjob',
                    name='instance',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='core.instance'),
                ),
                migrations.RemoveField(
                    model_name='resource',
                    name='instance',
                ),
                migrations.AlterField(
                    model_name='jobhistory',
                    name='instance',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='history', to='core.instance'),
                ),
                migrations.DeleteModel(
                    name='ApiClient',
                ),
                migrations.DeleteModel(
                    name='Resource',
                ),
                migrations.DeleteModel(
                    name='Instance',
                ),
            ],
        ),
    ]
